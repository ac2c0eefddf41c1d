import { constants } from 'node:os'
import { performance } from 'node:perf_hooks'

import type Docker from 'dockerode'
import type { Logger } from 'pino'

import { InfrastructureError, errorMessage } from '../domain/errors.ts'
import type { PhaseRunRequest, PhaseRunResult, RunOutcome } from './container-runtime.ts'
import { engineStatus } from './docker-client.ts'
import { FrameDemuxer, type OutputStream } from './docker-frames.ts'
import { LogCapture } from './log-capture.ts'
import { measureTree } from './output-size.ts'
import { ProgressScanner, type Progress } from './progress.ts'
import { UsageTracker } from './usage-tracker.ts'

/** After SIGKILL the engine must report the exit within this, or the run is proctor's failure. */
const KILL_CONFIRM_MS = 30_000
/** After the exit, the rest of the output must arrive within this. */
const LOG_DRAIN_MS = 5_000

/** docker-init (tini) prints this, then exits 127 or 126, when it cannot exec the command. */
const INIT_EXEC_FAILED = /^\[FATAL tini \(\d+\)\] exec .* failed: /

/** Why proctor ended the run; the first reason wins. */
type StopReason = 'deadline' | 'cancel' | 'output'

export interface PhaseRunTiming {
  readonly killGraceMs: number
  readonly outputPollMs: number
}

/**
 * The life of one created container: attach, start, watch (deadline, cancellation, output
 * size), wait, inspect. The caller creates the container and removes it afterwards; this
 * class never leaves a timer, listener or stream behind, on any path.
 */
export class PhaseRun {
  readonly #container: Docker.Container
  readonly #request: PhaseRunRequest
  readonly #logger: Logger
  readonly #timing: PhaseRunTiming
  readonly #streams = new AbortController()
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #signalsInFlight = new Set<Promise<void>>()
  readonly #usage = new UsageTracker()
  #started = false
  #exited = false
  #stopReason: StopReason | null = null
  #rejectStuck: (err: Error) => void = () => {}

  constructor(
    container: Docker.Container,
    request: PhaseRunRequest,
    logger: Logger,
    timing: PhaseRunTiming,
  ) {
    this.#container = container
    this.#request = request
    this.#logger = logger
    this.#timing = timing
  }

  async run(): Promise<PhaseRunResult> {
    const onAbort = () => this.#stop('cancel', 'SIGKILL')
    this.#request.signal?.addEventListener('abort', onAbort, { once: true })
    try {
      return await this.#run()
    } finally {
      this.#request.signal?.removeEventListener('abort', onAbort)
      for (const timer of this.#timers) clearTimeout(timer)
      this.#streams.abort()
    }
  }

  async #run(): Promise<PhaseRunResult> {
    const request = this.#request
    const capture = new LogCapture(request.logLimitBytes, { redactor: request.redactor })
    const scanners = this.#progressScanners()
    const demuxer = new FrameDemuxer((stream, payload) => {
      capture.write(payload)
      scanners?.[stream].push(payload)
    })

    // Attached before the start, so not a byte of output is missed.
    const output = await this.#engine('attach to', () =>
      this.#container.attach({
        stream: true,
        stdout: true,
        stderr: true,
        abortSignal: this.#streams.signal,
      }),
    )
    const drained = drain(output, (chunk) => demuxer.push(chunk))

    if (this.#stopReason === 'cancel' || request.signal?.aborted) {
      return this.#notStarted(capture)
    }
    await this.#engine('start', () => this.#container.start())
    const startedAt = performance.now()
    this.#started = true
    this.#logger.info({ image: request.image, runtime: request.runtime }, 'phase container started')

    if (request.signal?.aborted) this.#stop('cancel', 'SIGKILL')
    this.#trackUsage()
    this.#armDeadline()
    this.#armOutputWatch()

    await this.#waitForExit()
    this.#exited = true
    const endedAt = performance.now()
    for (const timer of this.#timers) clearTimeout(timer)
    // A signal sent just before the exit may still be answered "not running": wait for it,
    // since that answer decides whether the run was stopped or ended by itself.
    await Promise.allSettled([...this.#signalsInFlight])

    if (!(await settlesWithin(drained, LOG_DRAIN_MS))) {
      this.#logger.warn('phase output still open after the exit; the log may miss its end')
    }
    scanners?.stdout.end()
    scanners?.stderr.end()

    const info = await this.#engine('inspect', () => this.#container.inspect())
    const outputBytes = request.outputDir ? await measureTree(request.outputDir) : null
    const result = this.#result(info.State, capture, outputBytes, endedAt - startedAt)
    this.#logger.info(
      { outcome: result.outcome, exitCode: result.exitCode, wallMs: result.wallMs },
      'phase container finished',
    )
    return result
  }

  #result(
    state: Docker.ContainerInspectInfo['State'],
    capture: LogCapture,
    outputBytes: number | null,
    localWallMs: number,
  ): PhaseRunResult {
    const exitCode = state.ExitCode
    const signal = signalName(exitCode)
    const execFailed =
      (exitCode === 126 || exitCode === 127) &&
      INIT_EXEC_FAILED.test(capture.start(256).toString('latin1'))

    let outcome: RunOutcome = signal ? 'killed' : 'exited'
    if (this.#stopReason === 'output') outcome = 'output_exceeded'
    // OOMKilled is set when any process of the container was killed for memory: a program that
    // survives the loss of a child and exits 0 succeeded.
    if (state.OOMKilled && exitCode !== 0) outcome = 'oom_killed'
    if (this.#stopReason === 'deadline') outcome = 'timed_out'
    if (this.#stopReason === 'cancel') outcome = 'cancelled'

    return {
      outcome,
      exitCode,
      signal,
      execFailed,
      wallMs: engineWallMs(state) ?? Math.round(localWallMs),
      ...this.#usage.usage,
      log: capture.finish(),
      outputBytes,
      containerId: this.#container.id,
    }
  }

  #notStarted(capture: LogCapture): PhaseRunResult {
    return {
      outcome: 'cancelled',
      exitCode: null,
      signal: null,
      execFailed: false,
      wallMs: 0,
      cpuMs: null,
      peakMemoryBytes: null,
      peakPids: null,
      log: capture.finish(),
      outputBytes: null,
      containerId: this.#container.id,
    }
  }

  /** The time limit counts from the start: SIGTERM at the deadline, SIGKILL after the grace. */
  #armDeadline(): void {
    this.#after(this.#request.limits.timeSeconds * 1000, () => {
      this.#stop('deadline', 'SIGTERM')
      this.#after(this.#timing.killGraceMs, () => this.#stop('deadline', 'SIGKILL'))
    })
  }

  /**
   * The output folder is a host folder: without a watch a phase could fill the host's disk
   * until its time limit. Measured every outputPollMs, one walk at a time.
   */
  #armOutputWatch(): void {
    const outputDir = this.#request.outputDir
    if (!outputDir) return
    const limit = this.#request.limits.outputMb * 1024 * 1024
    const poll = () => {
      measureTree(outputDir, { stopAbove: limit })
        .then((bytes) => {
          if (bytes > limit) this.#stop('output', 'SIGKILL')
          else if (!this.#exited) this.#after(this.#timing.outputPollMs, poll)
        })
        .catch((err: unknown) => {
          this.#logger.warn(
            { err },
            'could not measure the output folder; it is checked after the run',
          )
        })
    }
    this.#after(this.#timing.outputPollMs, poll)
  }

  /** The engine's stats stream until the exit (usage-tracker.ts says why and its limits). */
  #trackUsage(): void {
    const options = { stream: true, abortSignal: this.#streams.signal } as const
    this.#container
      .stats(options)
      .then((stream) => drain(stream, (chunk) => this.#usage.push(chunk)))
      .catch((err: unknown) => {
        if (!this.#streams.signal.aborted) this.#logger.debug({ err }, 'no stats for this run')
      })
  }

  /** Resolves when the container is no longer running. */
  async #waitForExit(): Promise<void> {
    const stuck = new Promise<never>((_, reject) => {
      this.#rejectStuck = reject
    })
    const exited = this.#container.wait({
      condition: 'not-running',
      abortSignal: this.#streams.signal,
    })
    try {
      await Promise.race([exited, stuck])
    } catch (err) {
      if (err instanceof InfrastructureError) throw err
      throw new InfrastructureError(
        `lost track of container ${this.#container.id} while waiting for its exit: ${errorMessage(err)}. ` +
          'Check that the Docker engine is running; the evaluation will be retried.',
        { cause: err },
      )
    }
  }

  #stop(reason: StopReason, signal: 'SIGTERM' | 'SIGKILL'): void {
    if (this.#exited) return
    const isFirst = this.#stopReason === null
    if (isFirst) this.#stopReason = reason
    if (!this.#started) return

    if (signal === 'SIGKILL') {
      this.#after(KILL_CONFIRM_MS, () =>
        this.#rejectStuck(
          new InfrastructureError(
            `container ${this.#container.id} did not stop ${KILL_CONFIRM_MS / 1000} s after SIGKILL; ` +
              'check the engine (docker info, its log); the evaluation will be retried.',
          ),
        ),
      )
    }
    const sent = this.#signal(signal).then((answer) => {
      // "Not running": the program ended by itself before the signal. It was not stopped.
      if (answer === 'not-running' && isFirst && this.#stopReason === reason)
        this.#stopReason = null
    })
    this.#signalsInFlight.add(sent)
    void sent.finally(() => this.#signalsInFlight.delete(sent))
  }

  async #signal(signal: 'SIGTERM' | 'SIGKILL'): Promise<'sent' | 'not-running' | 'failed'> {
    try {
      await this.#container.kill({ signal })
      this.#logger.debug({ signal }, 'signalled the phase container')
      return 'sent'
    } catch (err) {
      const status = engineStatus(err)
      if (status === 409 || status === 404) return 'not-running'
      this.#logger.warn({ err, signal }, 'could not signal the phase container')
      return 'failed'
    }
  }

  #progressScanners(): Record<OutputStream, ProgressScanner> | null {
    const { onProgress, trustProgress, redactor } = this.#request
    if (!trustProgress || !onProgress) return null
    const report = (progress: Progress) => {
      try {
        onProgress(
          progress.fraction,
          redactor ? redactor.redact(progress.message) : progress.message,
        )
      } catch (err) {
        this.#logger.warn({ err }, 'the progress callback threw; progress is not reported')
      }
    }
    return { stdout: new ProgressScanner(report), stderr: new ProgressScanner(report) }
  }

  #after(ms: number, action: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      action()
    }, ms)
    this.#timers.add(timer)
  }

  async #engine<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } catch (err) {
      throw new InfrastructureError(
        `could not ${what} container ${this.#container.id} (${this.#request.image}): ${errorMessage(err)}. ` +
          'Check the engine (docker info); the evaluation will be retried.',
        { cause: err },
      )
    }
  }
}

/** Reads a stream to its end, close or error; never rejects. */
function drain(stream: NodeJS.ReadableStream, onChunk: (chunk: Buffer) => void): Promise<void> {
  return new Promise((resolve) => {
    stream.on('data', (chunk: Buffer | string) =>
      onChunk(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)),
    )
    stream.once('end', resolve)
    stream.once('close', resolve)
    stream.once('error', () => resolve())
  })
}

async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  try {
    return await Promise.race([promise.then(() => true as const), timeout])
  } finally {
    clearTimeout(timer)
  }
}

const SIGNAL_NAMES = new Map(
  Object.entries(constants.signals).map(([name, number]) => [number, name]),
)

/** The signal an exit code reports (128 + n, as shells and docker-init set it), if any. */
export function signalName(exitCode: number): string | null {
  return exitCode > 128 ? (SIGNAL_NAMES.get(exitCode - 128) ?? null) : null
}

/** The engine's own record of the run, in nanoseconds precision; null when unusable. */
function engineWallMs(state: Docker.ContainerInspectInfo['State']): number | null {
  const started = Date.parse(state.StartedAt)
  const finished = Date.parse(state.FinishedAt)
  if (!Number.isFinite(started) || !Number.isFinite(finished) || finished < started) return null
  // The engine writes 0001-01-01 for a time it does not have.
  if (started <= 0 || finished <= 0) return null
  return finished - started
}
