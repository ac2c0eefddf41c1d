import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { openStore } from '../../src/store/database.ts'
import { TEST_ENV } from '../support/env.ts'
import { runCli } from './support/run-cli.ts'

const dir = mkdtempSync(path.join(os.tmpdir(), 'proctor-cli-local-'))

afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('commands that run without a proctor server', () => {
  it('challenge test submits the baseline through the real path and prints its score', async () => {
    const result = await runCli(
      ['challenge', 'test', path.join(TEST_ENV.repoRoot, 'examples/challenges/iris.yaml')],
      {},
    )
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/state {6}scored: scored 0\.9600/)
    expect(result.stdout).toMatch(
      /image {6}127\.0\.0\.1:5000\/proctor\/iris\/organizer\/iris@sha256:[0-9a-f]{64}/,
    )
  })

  it('challenge test fails with exit code 2 and says why when the file names no baseline', async () => {
    const file = path.join(dir, 'nobase.yaml')
    writeFileSync(
      file,
      readFileSync(path.join(TEST_ENV.repoRoot, 'examples/challenges/iris.yaml'), 'utf8')
        .replace(/^baseline:.*$/m, '')
        .replace(/iris\/data/g, path.join(TEST_ENV.repoRoot, 'examples/challenges/iris/data'))
        .replace(
          '{ build: graders/accuracy }',
          `{ build: ${path.join(TEST_ENV.repoRoot, 'examples/challenges/graders/accuracy')} }`,
        ),
    )
    const result = await runCli(['challenge', 'test', file], {})
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/set "baseline" to the folder of a baseline repository/)
  })

  it('local-run builds a repository and runs it as proctor would, writing its output', async () => {
    const output = path.join(dir, 'out')
    const result = await runCli(
      [
        'local-run',
        path.join(TEST_ENV.repoRoot, 'examples/participants/iris'),
        '--challenge',
        path.join(TEST_ENV.repoRoot, 'examples/challenges/iris.yaml'),
        '--inputs',
        path.join(TEST_ENV.repoRoot, 'examples/challenges/iris/data/inputs'),
        '--output',
        output,
      ],
      {},
    )
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/docker run --rm/)
    expect(result.stdout).toMatch(/exited, exit code 0/)
    expect(readFileSync(path.join(output, 'predictions.csv'), 'utf8')).toMatch(/^id,label\n/)
  })

  it('token create issues a participant token once and stores only its hash', async () => {
    const config = path.join(dir, 'proctor.yaml')
    const participants = path.join(dir, 'participants.yaml')
    writeFileSync(
      participants,
      "participants:\n  - { username: alice, identities: [{ forge: gitlab, userId: '42' }] }\n",
    )
    writeFileSync(
      config,
      `database: { url: 'sqlite:${path.join(dir, 'p.db')}' }\nparticipantsFile: ${participants}\nchallengesDir: ${path.join(TEST_ENV.repoRoot, 'examples/challenges')}\n` +
        "forges: [{ id: gitlab, kind: gitlab, baseUrl: 'https://g.test', cloneUrl: 'git://127.0.0.1/{path}.git', hookSecrets: [s] }]\n",
    )
    // The directory is loaded by proctor at start; here the token command reads it from the store.
    const store = openStore(`sqlite:${path.join(dir, 'p.db')}`)
    const { migrate } = await import('../../src/store/database.ts')
    await migrate(store)
    await store.db
      .insertInto('participants')
      .values({
        username: 'alice',
        display_name: null,
        team: null,
        platform_id: null,
        created_at: new Date().toISOString(),
      })
      .execute()
    await store.close()

    const result = await runCli(
      [
        '-c',
        config,
        'token',
        'create',
        '--name',
        'alice-token',
        '--participant',
        'alice',
        '--json',
      ],
      {},
    )
    expect(result.code, result.stderr).toBe(0)
    const created = JSON.parse(result.stdout) as { token: string; scope: string }
    expect(created.scope).toBe('participant')
    expect(created.token.length).toBeGreaterThanOrEqual(32)
    expect(readFileSync(path.join(dir, 'p.db')).includes(Buffer.from(created.token))).toBe(false)
  })
})
