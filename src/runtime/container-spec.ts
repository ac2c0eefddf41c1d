import path from 'node:path'

import type Docker from 'dockerode'

import { ProctorError } from '../domain/errors.ts'
import { OUTPUT_CONTAINER_PATH, PROCTOR_LABEL, type PhaseRunRequest } from './container-runtime.ts'

/**
 * The engine's description of a phase container: every isolation setting proctor relies on,
 * in one place. Each line states a guarantee the integration tests check from inside.
 */

const MIB = 1024 * 1024
const IMMUTABLE_IMAGE = /^(?:[^\s@]+@sha256:[0-9a-f]{64}|sha256:[0-9a-f]{64})$/
const NUMERIC_USER = /^(\d+):(\d+)$/
export const MIN_LOG_LIMIT_BYTES = 1024
const MAX_TIMER_MS = 2 ** 31 - 1

/** Refuses a request proctor must never send: a bug in the caller, not a submission's fault. */
export function validateRunRequest(request: PhaseRunRequest): { uid: number; gid: number } {
  const fail = (why: string): never => {
    throw new ProctorError('invalid_run_request', `refusing to run ${request.image}: ${why}`)
  }

  if (!IMMUTABLE_IMAGE.test(request.image)) {
    fail('the image must be pinned as name@sha256:<64 hex> or a local id sha256:<64 hex>')
  }
  const user = NUMERIC_USER.exec(request.user)
  const uid = Number(user?.[1])
  const gid = Number(user?.[2])
  if (!user || uid === 0 || gid === 0) {
    fail(`user ${JSON.stringify(request.user)} must be a numeric uid:gid other than root's`)
  }
  if (request.network !== 'none') fail(`network ${String(request.network)} is not allowed`)

  const { limits } = request
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isFinite(value) || value <= 0) fail(`limits.${name} must be a positive number`)
  }
  if (!Number.isInteger(limits.pids)) fail('limits.pids must be an integer')
  // Node fires a longer timer at once (it overflows 32 bits), which would kill at the start.
  if (limits.timeSeconds * 1000 > MAX_TIMER_MS)
    fail(`limits.timeSeconds must be at most ${MAX_TIMER_MS / 1000}`)
  if (!Number.isInteger(request.gpus) || request.gpus < 0) fail('gpus must be a whole number ≥ 0')
  if (!Number.isInteger(request.logLimitBytes) || request.logLimitBytes < MIN_LOG_LIMIT_BYTES) {
    fail(`logLimitBytes must be an integer ≥ ${MIN_LOG_LIMIT_BYTES}`)
  }

  if (request.outputDir !== undefined && !path.isAbsolute(request.outputDir)) {
    fail(`outputDir ${request.outputDir} must be an absolute path`)
  }
  const targets = new Set<string>(['/tmp', ...(request.outputDir ? [OUTPUT_CONTAINER_PATH] : [])])
  for (const mount of request.mounts) {
    if (!path.isAbsolute(mount.hostPath) || !path.posix.isAbsolute(mount.containerPath)) {
      fail(`mount ${mount.hostPath} → ${mount.containerPath} needs absolute paths`)
    }
    const target = path.posix.normalize(mount.containerPath)
    if (target === '/' || targets.has(target)) fail(`mount target ${target} is taken`)
    targets.add(target)
  }
  return { uid, gid }
}

export function buildCreateOptions(request: PhaseRunRequest): Docker.ContainerCreateOptions {
  const { limits } = request
  const memory = Math.round(limits.memoryMb * MIB)
  const mounts: Docker.MountConfig = request.mounts.map((mount) => ({
    Type: 'bind',
    Source: mount.hostPath,
    Target: mount.containerPath,
    ReadOnly: mount.readOnly,
  }))
  if (request.outputDir) {
    mounts.push({
      Type: 'bind',
      Source: request.outputDir,
      Target: OUTPUT_CONTAINER_PATH,
      ReadOnly: false,
    })
  }

  return {
    Image: request.image,
    Cmd: request.command ? [...request.command] : undefined,
    WorkingDir: request.workingDir,
    User: request.user,
    // HOME in a read-only root is useless to the many libraries that cache there.
    Env: Object.entries({ HOME: '/tmp', ...request.env }).map(([key, value]) => `${key}=${value}`),
    Labels: { ...request.labels, [PROCTOR_LABEL]: '1' },
    Tty: false,
    OpenStdin: false,
    AttachStdin: false,
    AttachStdout: true,
    AttachStderr: true,
    NetworkDisabled: true,
    HostConfig: {
      // Swap equal to memory: no swap, so the limit is a hard one and ends in an OOM kill.
      Memory: memory,
      MemorySwap: memory,
      NanoCpus: Math.round(limits.cpus * 1e9),
      // Under gVisor the engine's pids limit counts the sandbox's own threads, and a fork bomb
      // that reaches it kills the sandbox itself (exit 2) rather than failing the guest's
      // fork. runsc phases therefore rely on the memory and CPU limits, which hold a fork
      // bomb inside the sandbox (test/runtime/limits.test.ts).
      PidsLimit: request.runtime === 'runsc' ? 0 : limits.pids,
      ReadonlyRootfs: true,
      // The only writable place besides the output folder; its pages count against Memory.
      // exec is allowed: the image is the participant's own, so noexec protects nothing and
      // breaks programs that build or unpack code in /tmp.
      Tmpfs: { '/tmp': `rw,exec,nosuid,nodev,size=${Math.round(limits.tmpfsMb)}m,mode=1777` },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Privileged: false,
      NetworkMode: 'none',
      IpcMode: 'private',
      // `Mounts`, not `Binds`: a missing source is an error rather than a new empty folder
      // made by the engine, and paths with `:` or `,` cannot change the options.
      Mounts: mounts,
      Runtime: request.runtime,
      DeviceRequests:
        request.gpus > 0
          ? [{ Driver: '', Count: request.gpus, Capabilities: [['gpu']], Options: {} }]
          : undefined,
      // An init as PID 1 forwards SIGTERM to the program and reaps its orphans.
      Init: true,
      // proctor reads the output through attach into a capped capture; the engine keeps none.
      LogConfig: { Type: 'none', Config: {} },
      // A crash must not write a core file (or feed a host core handler) of up to Memory.
      Ulimits: [{ Name: 'core', Soft: 0, Hard: 0 }],
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: false,
    },
  }
}
