import { execFile } from 'node:child_process'

import { ProctorError } from '../domain/errors.ts'

export interface GitRunOptions {
  /** The repository (`git -C`). */
  cwd?: string
  timeoutMs: number
  env?: Readonly<Record<string, string>>
  maxBytes?: number
}

/** git exited non-zero or ran out of time. `stderr` is git's own words, trimmed. */
export class GitError extends ProctorError {
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly timedOut: boolean,
  ) {
    super(
      'git_failed',
      timedOut
        ? `git ${args[0] ?? ''} did not finish in time`
        : `git ${args[0] ?? ''} failed (exit ${exitCode ?? '?'}): ${stderr.slice(0, 500)}`,
    )
  }
}

/**
 * The environment every git process gets: no prompts (a missing credential fails at once
 * instead of hanging a worker), no ssh questions, and no system-wide config surprises.
 */
export const GIT_ENV: Readonly<Record<string, string>> = {
  GIT_TERMINAL_PROMPT: '0',
  GIT_SSH_COMMAND: 'ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new',
  GIT_CONFIG_NOSYSTEM: '1',
  LC_ALL: 'C',
}

/** Runs git with arguments (never a shell) and returns its stdout bytes. */
export function runGit(args: readonly string[], options: GitRunOptions): Promise<Buffer> {
  const fullArgs = options.cwd ? ['-C', options.cwd, ...args] : [...args]
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      fullArgs,
      {
        encoding: 'buffer',
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: options.maxBytes ?? 16 * 1024 * 1024,
        env: { ...process.env, ...GIT_ENV, ...options.env },
      },
      function gitExited(error, stdout, stderr) {
        if (!error) return resolve(stdout)
        const timedOut = error.killed === true || error.signal === 'SIGKILL'
        const code = typeof error.code === 'number' ? error.code : null
        reject(new GitError(args, code, stderr.toString('utf8').trim(), timedOut))
      },
    )
  })
}
