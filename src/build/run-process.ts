import { spawn } from 'node:child_process'

/**
 * Runs a host program (git, repo2docker) in its own process group with a deadline. On the
 * deadline or an abort the whole group is killed, so helpers it started (git's remote
 * helpers, a Python child) die with it.
 */
export interface RunProcessOptions {
  cwd?: string
  /** The complete environment: nothing of proctor's own environment leaks in. */
  env: Record<string, string>
  timeoutMs: number
  signal?: AbortSignal
  /** Called with each complete line of output, as it arrives. */
  onStdoutLine?: (line: string) => void
  onStderrLine?: (line: string) => void
  /** Characters of output kept in the result, per stream (the end is kept). */
  keepChars?: number
}

export interface RunProcessResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  timedOut: boolean
  aborted: boolean
  durationMs: number
}

const DEFAULT_KEEP_CHARS = 64 * 1024

export async function runProcess(
  file: string,
  args: readonly string[],
  options: RunProcessOptions,
): Promise<RunProcessResult> {
  options.signal?.throwIfAborted()
  const started = Date.now()
  const keep = options.keepChars ?? DEFAULT_KEEP_CHARS
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let timedOut = false
    let aborted = false
    const stdout = collectLines(keep, options.onStdoutLine)
    const stderr = collectLines(keep, options.onStderrLine)
    child.stdout.on('data', stdout.push)
    child.stderr.on('data', stderr.push)

    const killGroup = function killGroup() {
      if (child.pid === undefined) return
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        // The group is already gone.
      }
    }
    const timer = setTimeout(function onDeadline() {
      timedOut = true
      killGroup()
    }, options.timeoutMs)
    const onAbort = function onAbort() {
      aborted = true
      killGroup()
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })

    child.once('error', function onSpawnError(err) {
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      reject(err)
    })
    child.once('close', function onClose(code, signal) {
      clearTimeout(timer)
      options.signal?.removeEventListener('abort', onAbort)
      resolve({
        code,
        signal,
        stdout: stdout.end(),
        stderr: stderr.end(),
        timedOut,
        aborted,
        durationMs: Date.now() - started,
      })
    })
  })
}

/** Splits a byte stream into lines for a callback and keeps the last `keep` bytes of text. */
function collectLines(keep: number, onLine: ((line: string) => void) | undefined) {
  const decoder = new TextDecoder()
  let kept = ''
  let partial = ''
  const take = (text: string) => {
    kept = (kept + text).slice(-keep)
    if (!onLine) return
    const lines = (partial + text).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) onLine(line)
  }
  return {
    push: (chunk: Buffer) => take(decoder.decode(chunk, { stream: true })),
    end: () => {
      take(decoder.decode())
      if (onLine && partial !== '') onLine(partial)
      partial = ''
      return kept
    },
  }
}

/** The environment every host program gets: enough to run, nothing secret. */
export function baseEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
  }
  for (const [key, value] of Object.entries(extra)) {
    if (value !== undefined) env[key] = value
  }
  return env
}
