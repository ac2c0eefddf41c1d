/**
 * CPU time, peak memory and peak process count of a running container, from the engine's
 * stats (`GET /containers/{id}/stats?stream=false&one-shot=true`, read from the container's
 * cgroup at the time of the call), polled every USAGE_POLL_MS while it runs.
 *
 * Why polling: the cgroup is deleted as the container exits, so a read after the exit finds
 * nothing and one just before is a race. Polling loses at most the last interval of CPU time.
 * The engine's own stats stream samples only once a second, which lost up to a second of a
 * two-second run. Peak memory is exact up to the last poll on cgroup v1, where the engine
 * reports the cgroup's high-water mark (`max_usage`); on cgroup v2 it is the largest polled
 * usage. Both include tmpfs pages.
 */
export const USAGE_POLL_MS = 250

export interface Usage {
  readonly cpuMs: number | null
  readonly peakMemoryBytes: number | null
  readonly peakPids: number | null
}

export class UsageTracker {
  #cpuNs: number | null = null
  #peakMemory: number | null = null
  #peakPids: number | null = null

  /** Reads one stats object; zeros (the engine's answer for a stopped container) are ignored. */
  observe(stats: unknown): void {
    const memory = field(stats, 'memory_stats')
    const cpuNs = numberAt(field(field(stats, 'cpu_stats'), 'cpu_usage'), 'total_usage')
    const memoryBytes = numberAt(memory, 'max_usage') ?? numberAt(memory, 'usage')
    const pids = numberAt(field(stats, 'pids_stats'), 'current')
    if (cpuNs) this.#cpuNs = Math.max(this.#cpuNs ?? 0, cpuNs)
    if (memoryBytes) this.#peakMemory = Math.max(this.#peakMemory ?? 0, memoryBytes)
    if (pids) this.#peakPids = Math.max(this.#peakPids ?? 0, pids)
  }

  get usage(): Usage {
    return {
      cpuMs: this.#cpuNs === null ? null : Math.round(this.#cpuNs / 1e6),
      peakMemoryBytes: this.#peakMemory,
      peakPids: this.#peakPids,
    }
  }
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined
}

function numberAt(value: unknown, key: string): number | null {
  const found = field(value, key)
  return typeof found === 'number' && Number.isFinite(found) ? found : null
}
