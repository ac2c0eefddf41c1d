import { execFile } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'

import { DockerfileBuilder } from '../../src/build/dockerfile-builder.ts'
import { Repo2DockerBuilder } from '../../src/build/repo2docker.ts'
import { dockerRunEquivalent, localRun } from '../../src/local/local-run.ts'
import { connectDocker } from '../../src/runtime/docker-client.ts'
import { DockerRuntime } from '../../src/runtime/docker-runtime.ts'
import { phaseRunRequest, IN } from '../../src/worker/phase-request.ts'
import { loadChallengeFile } from '../../src/config/challenge.ts'
import { TEST_ENV } from '../support/env.ts'

const run = promisify(execFile)
const log = pino({ level: 'silent' })
const docker = connectDocker()
const root = TEST_ENV.repoRoot
const dirs: string[] = []

function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'proctor-local-'))
  chmodSync(dir, 0o777)
  dirs.push(dir)
  return dir
}

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

describe('proctor local-run', () => {
  it('builds the iris baseline and runs it under the contract, writing predictions', async () => {
    const outputDir = tempDir()
    const result = await localRun({
      repoDir: path.join(root, 'examples/participants/iris'),
      challengeFile: path.join(root, 'examples/challenges/iris.yaml'),
      inputsDir: path.join(root, 'examples/challenges/iris/data/inputs'),
      outputDir,
      builders: {
        repo2docker: new Repo2DockerBuilder(path.join(root, '.venv/bin/repo2docker'), log, {
          docker,
        }),
        dockerfile: new DockerfileBuilder(docker, log),
      },
      runtime: new DockerRuntime(docker, log),
      log,
      say: () => undefined,
    })
    expect(result.failure).toBeNull()
    expect(result.outputs).toEqual(['predictions.csv'])
    expect(readFileSync(path.join(outputDir, 'predictions.csv'), 'utf8').split('\n')[0]).toBe(
      'id,label',
    )

    // The printed command, pasted into a shell, does the same.
    const phase = loadChallengeFile(path.join(root, 'examples/challenges/iris.yaml')).definition
      .phases[0]
    if (!phase) throw new Error('iris has no phases')
    const byHand = tempDir()
    const request = phaseRunRequest({
      phase,
      image: result.imageId,
      mounts: [
        {
          hostPath: path.join(root, 'examples/challenges/iris/data/inputs'),
          containerPath: IN.input,
          readOnly: true,
        },
      ],
      outputDir: byHand,
      debug: true,
      labels: {},
    })
    await run('sh', ['-c', dockerRunEquivalent(result.imageId, request)])
    expect(readFileSync(path.join(byHand, 'predictions.csv'), 'utf8')).toBe(
      readFileSync(path.join(outputDir, 'predictions.csv'), 'utf8'),
    )
  })
})
