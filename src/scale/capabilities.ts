import type Docker from 'dockerode'
import type { Logger } from 'pino'

import { errorMessage } from '../domain/errors.ts'

/**
 * What a worker host can run, as capability strings the claim matches against a job's
 * required set (src/queue/capabilities.ts):
 *
 * - `gvisor`: the Docker Engine has a `runsc` runtime registered (`docker info` Runtimes).
 * - `gpu`: declared in the configuration (`worker.capabilities: [gpu]`). GPUs are not probed:
 *   a driver that is installed but broken would advertise GPUs no job can use; the operator
 *   who installed them says so.
 *
 * Anything else in `worker.capabilities` is passed through as declared.
 */
export interface HostCapabilities {
  readonly capabilities: readonly string[]
  /** Runtimes the engine offers, e.g. ['io.containerd.runc.v2', 'runc', 'runsc']. */
  readonly runtimes: readonly string[]
  readonly gvisor: boolean
  readonly gpus: boolean
}

export async function detectCapabilities(
  docker: Docker,
  declared: readonly string[],
  log: Logger,
): Promise<HostCapabilities> {
  let runtimes: string[] = []
  try {
    const info = (await docker.info()) as { Runtimes?: Record<string, unknown> }
    runtimes = Object.keys(info.Runtimes ?? {}).sort()
  } catch (err) {
    log.warn(
      { err: errorMessage(err) },
      'could not ask the Docker Engine for its runtimes; not advertising gvisor',
    )
  }
  const gvisor = runtimes.includes('runsc')
  const capabilities = [...new Set([...declared, ...(gvisor ? ['gvisor'] : [])])].sort()
  return { capabilities, runtimes, gvisor, gpus: capabilities.includes('gpu') }
}

/** The line a worker logs at start: which queues, how many slots, what it can run. */
export function describeWorker(options: {
  workerId: string
  queues: readonly string[]
  slots: number
  host: HostCapabilities
}): Record<string, unknown> {
  return {
    workerId: options.workerId,
    queues: options.queues.includes('*') ? 'every queue' : options.queues,
    slots: options.slots,
    capabilities: options.host.capabilities,
    gvisor: options.host.gvisor,
    gpus: options.host.gpus,
    runtimes: options.host.runtimes,
  }
}
