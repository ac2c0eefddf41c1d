import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'

import { TEST_ENV } from '../../support/env.ts'

const BIN = path.join(TEST_ENV.repoRoot, 'bin/proctor.js')

export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunningCli {
  readonly child: ChildProcess
  stdout: string
  stderr: string
  readonly done: Promise<CliResult>
}

/** `node bin/proctor.js …` as an operator runs it, with the API address and token in the environment. */
export function startCli(
  args: readonly string[],
  env: Record<string, string | undefined>,
): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: TEST_ENV.repoRoot,
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const running = { child, stdout: '', stderr: '' } as RunningCli
  child.stdout?.on('data', (chunk: Buffer) => (running.stdout += chunk.toString('utf8')))
  child.stderr?.on('data', (chunk: Buffer) => (running.stderr += chunk.toString('utf8')))
  Object.assign(running, {
    done: new Promise<CliResult>((resolve) =>
      child.on('close', (code) =>
        resolve({ code, stdout: running.stdout, stderr: running.stderr }),
      ),
    ),
  })
  return running
}

export function runCli(
  args: readonly string[],
  env: Record<string, string | undefined>,
  timeoutMs = 60_000,
): Promise<CliResult> {
  const running = startCli(args, env)
  const timer = setTimeout(() => running.child.kill('SIGKILL'), timeoutMs)
  return running.done.finally(() => clearTimeout(timer))
}

/** The test runner's environment without proctor's own variables, so nothing leaks in. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('PROCTOR_API')),
  ) as NodeJS.ProcessEnv
}
