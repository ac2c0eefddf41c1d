import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { assertServicesUp } from '../support/services.ts'

const run = promisify(execFile)
const CLI = path.join(import.meta.dirname, 'support/scale-cli.ts')

/** `proctor host` and `proctor sweep`, run as real subprocesses against a SQLite store. */
describe('the worker host commands', () => {
  let dir: string
  let config: string

  beforeAll(async () => {
    await assertServicesUp(['docker'])
    dir = mkdtempSync(path.join(tmpdir(), 'proctor-scale-cli-'))
    config = path.join(dir, 'proctor.yaml')
    writeFileSync(
      config,
      `database: { url: 'sqlite:${dir}/proctor.db' }\nbuilder: { workDir: ${dir}/work }\nworker: { capabilities: [gpu] }\n`,
    )
    // The store must exist: migrate it as `proctor migrate` would.
    const { migrate, openStore } = await import('../../src/store/database.ts')
    const store = openStore(`sqlite:${dir}/proctor.db`)
    await migrate(store)
    await store.close()
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  function proctor(...args: string[]) {
    return run(process.execPath, ['--import', 'tsx', CLI, '-c', config, ...args])
  }

  it('describes the host: capabilities, disks, and that it takes jobs', async () => {
    const { stdout } = await proctor('host', '--json')
    const report = JSON.parse(stdout) as {
      capabilities: string[]
      disks: unknown[]
      takesJobs: boolean
    }

    expect(report.capabilities).toContain('gpu')
    expect(report.disks.length).toBeGreaterThanOrEqual(1)
    expect(report.takesJobs).toBe(true)
  })

  it('sweeps a host with nothing left behind and says so', async () => {
    const { stdout } = await proctor('sweep')

    expect(stdout).toMatch(
      /^removed \d+ container\(s\), killed 0 builder\(s\), marked 0 worker\(s\) lost/,
    )
  })
})
