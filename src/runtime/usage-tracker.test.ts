import { describe, expect, it } from 'vitest'

import { UsageTracker } from './usage-tracker.ts'

function sample(cpuNs: number, maxUsage: number, pids: number): unknown {
  return {
    read: '2026-01-01T00:00:01Z',
    cpu_stats: { cpu_usage: { total_usage: cpuNs } },
    memory_stats: { usage: maxUsage / 2, max_usage: maxUsage, limit: 1 << 30 },
    pids_stats: { current: pids },
  }
}

describe('UsageTracker', () => {
  it('keeps the last CPU total and the highest memory and process count', () => {
    const tracker = new UsageTracker()
    tracker.observe(sample(100e6, 50e6, 3))
    tracker.observe(sample(900e6, 80e6, 12))
    tracker.observe(sample(1500e6, 70e6, 2))
    expect(tracker.usage).toEqual({ cpuMs: 1500, peakMemoryBytes: 80e6, peakPids: 12 })
  })

  it('reads samples split between chunks of the stream', () => {
    const tracker = new UsageTracker()
    const text =
      JSON.stringify(sample(2e6, 10e6, 1)) + '\n' + JSON.stringify(sample(4e6, 20e6, 2)) + '\n'
    for (const char of text) tracker.push(char)
    tracker.push('not json\n')
    expect(tracker.usage).toEqual({ cpuMs: 4, peakMemoryBytes: 20e6, peakPids: 2 })
  })

  it('ignores the zeroed answer for a stopped container and what is not stats', () => {
    const tracker = new UsageTracker()
    tracker.observe(sample(300e6, 40e6, 4))
    tracker.observe(sample(0, 0, 0))
    tracker.observe('not stats')
    tracker.observe(null)
    expect(tracker.usage).toEqual({ cpuMs: 300, peakMemoryBytes: 40e6, peakPids: 4 })
  })

  it('reports null before any sample', () => {
    expect(new UsageTracker().usage).toEqual({ cpuMs: null, peakMemoryBytes: null, peakPids: null })
  })

  it('uses usage when max_usage is missing (cgroup v2)', () => {
    const tracker = new UsageTracker()
    tracker.observe({ memory_stats: { usage: 123 } })
    expect(tracker.usage.peakMemoryBytes).toBe(123)
  })
})
