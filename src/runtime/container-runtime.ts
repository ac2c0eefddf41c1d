/**
 * The container runtime: runs one phase of an evaluation in a sandboxed container and says
 * what happened. The evaluate job decides what the outcome means (see classify.ts).
 *
 * Glossary
 * - phase run: one container, created, started, waited for and removed by `runPhase`. The
 *   container is removed on every path: success, failure, time limit, cancellation, error.
 * - time limit: counted from the moment the container starts; image work and queueing are
 *   not counted. At the deadline the container gets SIGTERM, then SIGKILL after a grace period.
 * - capture: the kept part of the container's stdout and stderr, merged in arrival order (the
 *   engine copies the two pipes separately, so lines of one may pass lines of the other): the
 *   first and last halves of `logLimitBytes`, the middle elided with a count, decoded as
 *   UTF-8, without terminal control sequences, with secrets redacted.
 * - output folder: a host folder mounted read-write; the only place a phase writes that
 *   outlives it. Its size is checked against `limits.outputMb` while the phase runs and after.
 *
 * Example (what the evaluate job sends for a participant's `predict` phase):
 *
 *   await runtime.runPhase({
 *     image: 'registry.internal:5000/subs/42@sha256:…',
 *     command: ['./run.sh'],
 *     workingDir: '/home/participant',
 *     user: '1000:1000',
 *     env: { PROCTOR_INPUT: '/proctor/input', PROCTOR_OUTPUT: '/proctor/output' },
 *     mounts: [{ hostPath: challenge.inputsDir, containerPath: '/proctor/input', readOnly: true }],
 *     outputDir: '/var/lib/proctor/runs/42/out/predict',
 *     limits: { timeSeconds: 600, memoryMb: 1024, cpus: 1, pids: 128, tmpfsMb: 64, outputMb: 64 },
 *     network: 'none',
 *     runtime: 'runc',
 *     gpus: 0,
 *     labels: { 'proctor.submission': '42', 'proctor.phase': 'predict' },
 *     logLimitBytes: 256 * 1024,
 *     trustProgress: false,
 *     signal: job.signal,
 *   })
 */
import type { Redactor } from './redact.ts'

/** Every container proctor creates carries this label, so a sweep never touches others'. */
export const PROCTOR_LABEL = 'proctor'

/** Where the output folder appears inside the container (docs/contracts.md). */
export const OUTPUT_CONTAINER_PATH = '/proctor/output'

/** A host folder made visible inside the container. Both paths are absolute. */
export interface Mount {
  readonly hostPath: string
  readonly containerPath: string
  readonly readOnly: boolean
}

/** The same shape as a challenge phase's `limits` (config/challenge.ts). */
export interface RunLimits {
  readonly timeSeconds: number
  readonly memoryMb: number
  readonly cpus: number
  /** Under runsc the engine also counts gVisor's own threads: 32 stops it from starting. */
  readonly pids: number
  /** Size of the writable /tmp. Its pages count against `memoryMb`. */
  readonly tmpfsMb: number
  readonly outputMb: number
}

export interface PhaseRunRequest {
  /** An immutable reference: `name@sha256:<64 hex>` or a local image id `sha256:<64 hex>`. */
  readonly image: string
  /** Default: the image's CMD. */
  readonly command?: readonly string[]
  readonly workingDir?: string
  /**
   * Numeric `uid:gid`, never 0 for either: a name would be looked up in the image's own
   * /etc/passwd, which the participant writes.
   */
  readonly user: string
  /** The only variables the runtime adds to the image's own. HOME defaults to /tmp. */
  readonly env: Readonly<Record<string, string>>
  readonly mounts: readonly Mount[]
  /**
   * Host folder mounted read-write at OUTPUT_CONTAINER_PATH; created if missing and made
   * writable by `user`.
   */
  readonly outputDir?: string
  readonly limits: RunLimits
  readonly network: 'none'
  readonly runtime: 'runc' | 'runsc'
  /**
   * 0 = none; more asks the engine for that many GPUs (needs the NVIDIA container toolkit;
   * under runsc also gVisor's nvproxy, which Debian's December 2022 runsc lacks).
   */
  readonly gpus: number
  /** Set on the container, always with `proctor=1`; `removeByLabel` finds them again. */
  readonly labels: Readonly<Record<string, string>>
  /** Bytes of log kept: the first and last halves; the middle is counted and elided. */
  readonly logLimitBytes: number
  /** Organizer phases only: called for each `PROCTOR_PROGRESS <0..1> [message]` line. */
  readonly onProgress?: (fraction: number, message: string) => void
  /** Parse progress lines only when true: a participant must not drive the progress bar. */
  readonly trustProgress: boolean
  /** Applied to the captured log and progress messages. */
  readonly redactor?: Redactor
  /** Aborting kills the container (SIGKILL), removes it and resolves with `cancelled`. */
  readonly signal?: AbortSignal
}

/**
 * - `exited`: the program ended by itself (any exit code, including 128+n it returned).
 * - `timed_out`: proctor stopped it at the time limit (the outcome even if it then exits 0).
 * - `oom_killed`: the kernel killed it for memory (the engine's OOMKilled) and it exited non-zero.
 * - `killed`: it died from a signal proctor did not send.
 * - `output_exceeded`: proctor killed it because its output folder passed the output limit.
 * - `cancelled`: the caller aborted the run.
 */
export type RunOutcome =
  | 'exited'
  | 'timed_out'
  | 'oom_killed'
  | 'killed'
  | 'output_exceeded'
  | 'cancelled'

export interface CapturedLog {
  /** Valid UTF-8, no terminal control sequences, secrets redacted. */
  readonly text: string
  /** Bytes the container wrote to stdout and stderr. */
  readonly bytesTotal: number
  /** Bytes left out of `text` (the middle of the stream), shown in it as a marker. */
  readonly bytesElided: number
}

export interface PhaseRunResult {
  readonly outcome: RunOutcome
  /** null when the container never ran (cancelled before its start). */
  readonly exitCode: number | null
  /** `SIGKILL` when the exit code says a signal ended the program (128 + n). */
  readonly signal: string | null
  /** The engine or its init could not execute the command (missing, not executable). */
  readonly execFailed: boolean
  /** From the container's start to its end, as the engine recorded them. */
  readonly wallMs: number
  /**
   * CPU time, peak memory (the cgroup's high-water mark, tmpfs included) and process count,
   * from the engine's stats stream (one sample a second): up to the last second of CPU time is
   * missing, and a container that ends before the first sample reports null.
   */
  readonly cpuMs: number | null
  readonly peakMemoryBytes: number | null
  readonly peakPids: number | null
  readonly log: CapturedLog
  /** Bytes in the output folder after the run; null without one. */
  readonly outputBytes: number | null
  /** null only when the run was cancelled before a container was created. */
  readonly containerId: string | null
}

/** What `statImageFile` reports of one path in an image. */
export interface ImageFileStat {
  readonly size: number
  /** Unix permission bits (0o755…). */
  readonly mode: number
  readonly isDirectory: boolean
  readonly isExecutable: boolean
  /** Set when the path is a symbolic link. */
  readonly linkTarget: string | null
}

export interface ContainerRuntime {
  /** Runs one phase to its end. Throws `InfrastructureError` only for the engine's own trouble. */
  runPhase(request: PhaseRunRequest): Promise<PhaseRunResult>
  /** Force-removes every proctor container with all these labels; returns how many. */
  removeByLabel(labels: Readonly<Record<string, string>>): Promise<number>
  /** Whether a path exists in an image, without running it (an entry-point check). */
  statImageFile(image: string, path: string): Promise<ImageFileStat | null>
}
