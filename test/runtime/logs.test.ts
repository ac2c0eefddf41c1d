import { afterEach, beforeAll, describe, expect, it } from 'vitest'

import type { PhaseRunRequest } from '../../src/runtime/container-runtime.ts'
import { REDACTED, makeRedactor } from '../../src/runtime/redact.ts'
import { hasControlCharacters } from '../../src/runtime/terminal-text.ts'
import {
  BUSYBOX,
  PYTHON,
  imageId,
  leftovers,
  phaseRequest,
  report,
  testLabels,
  timedRun,
} from './support.ts'

const MIB = 1024 * 1024

describe('DockerRuntime logs and measurements', () => {
  const labels = testLabels('logs')
  const seen: Array<string | null> = []
  let busybox: string
  let python: string

  beforeAll(async () => {
    busybox = await imageId(BUSYBOX)
    python = await imageId(PYTHON)
  })

  afterEach(async () => {
    expect(await leftovers({ ids: seen, labels })).toEqual([])
  })

  async function runPhase(request: PhaseRunRequest) {
    const timed = await timedRun(request)
    seen.push(timed.result.containerId)
    return timed
  }

  it('caps a 200 MB flood of output and keeps its own memory bounded', async () => {
    const total = 200_000_000
    const logLimitBytes = 64 * 1024
    global.gc?.()
    const baseline = process.memoryUsage().rss
    let peak = baseline
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss)
    }, 20)
    let result
    let ms
    try {
      ;({ result, ms } = await runPhase(
        phaseRequest(busybox, ['sh', '-c', `yes | head -c ${total}`], labels, { logLimitBytes }),
      ))
    } finally {
      clearInterval(sampler)
    }

    expect(result.outcome).toBe('exited')
    expect(result.exitCode).toBe(0)
    expect(result.log.bytesTotal).toBe(total)
    expect(result.log.bytesElided).toBe(total - logLimitBytes)
    expect(result.log.text.startsWith('y\ny\ny\n')).toBe(true)
    expect(result.log.text).toContain(`\n[… ${total - logLimitBytes} bytes elided …]\n`)
    expect(result.log.text.endsWith('y\ny\n')).toBe(true)
    expect(Buffer.byteLength(result.log.text)).toBeLessThan(logLimitBytes + 100)
    expect(peak - baseline).toBeLessThan(80 * MIB)
    report('200 MB flood', {
      wallMs: result.wallMs,
      callMs: ms,
      throughputMBps: Math.round(total / 1e3 / result.wallMs),
      rssBaselineMiB: Math.round(baseline / MIB),
      rssPeakGrowthMiB: Math.round(((peak - baseline) / MIB) * 10) / 10,
    })
  })

  it('stores binary output and terminal escapes as clean UTF-8', async () => {
    const command = [
      'sh',
      '-c',
      "head -c 4096 /dev/urandom; printf '\\033[2J\\033[31mred\\033[0m\\n'",
    ]
    const { result } = await runPhase(phaseRequest(busybox, command, labels))
    const text = result.log.text

    expect(result.log.bytesTotal).toBe(4096 + '\x1b[2J\x1b[31mred\x1b[0m\n'.length)
    expect(text.endsWith('red\n')).toBe(true)
    expect(hasControlCharacters(text)).toBe(false)
    expect(Buffer.from(text, 'utf8').toString('utf8')).toBe(text)
    expect(JSON.parse(JSON.stringify({ log: text }))).toEqual({ log: text })
  })

  it('redacts a secret the program prints plainly, encoded or split across lines', async () => {
    const secret = 'grader-Token-5f3a9c1e77d04b2a'
    const script = [
      'import base64, os',
      's = os.environ["GRADER_TOKEN"]',
      'print("plain:", s)',
      'print("base64:", base64.b64encode(b"user:" + s.encode()).decode())',
      'print("hex:", s.encode().hex())',
      'print("split:", s[:7]); print(s[7:])',
    ].join('\n')
    const { result } = await runPhase(
      phaseRequest(python, ['python3', '-c', script], labels, {
        env: { GRADER_TOKEN: secret },
        redactor: makeRedactor([secret]),
      }),
    )

    expect(result.exitCode).toBe(0)
    expect(result.log.text.split(REDACTED)).toHaveLength(5)
    expect(result.log.text).not.toContain(secret.slice(7))
    expect(result.log.text).not.toContain(Buffer.from(secret).toString('hex').slice(0, 16))
  })

  it('reports progress lines from a trusted phase only', async () => {
    const command = [
      'sh',
      '-c',
      'echo "PROCTOR_PROGRESS 0.5 half way"; echo noise; echo "PROCTOR_PROGRESS 1 done" >&2',
    ]
    const trusted: Array<[number, string]> = []
    await runPhase(
      phaseRequest(busybox, command, labels, {
        trustProgress: true,
        onProgress: (fraction, message) => trusted.push([fraction, message]),
      }),
    )
    // stdout and stderr are copied separately: their order is not kept.
    expect(trusted.sort(([a], [b]) => a - b)).toEqual([
      [0.5, 'half way'],
      [1, 'done'],
    ])

    const untrusted: Array<[number, string]> = []
    await runPhase(
      phaseRequest(busybox, command, labels, {
        trustProgress: false,
        onProgress: (fraction, message) => untrusted.push([fraction, message]),
      }),
    )
    expect(untrusted).toEqual([])
  })

  it('measures CPU time and peak memory of a run', async () => {
    const script = [
      'import time',
      'x = bytearray(200 * 1024 * 1024)',
      'end = time.time() + 2',
      'while time.time() < end: pass',
    ].join('\n')
    const limits = { ...phaseRequest(python, [], labels).limits, memoryMb: 512 }
    const { result } = await runPhase(
      phaseRequest(python, ['python3', '-c', script], labels, { limits }),
    )

    expect(result.exitCode).toBe(0)
    expect(result.peakMemoryBytes).toBeGreaterThan(200 * MIB)
    expect(result.peakMemoryBytes).toBeLessThan(512 * MIB)
    // Sampled once a second: up to the last second may be missing.
    expect(result.cpuMs).toBeGreaterThan(result.wallMs - 1_500)
    expect(result.cpuMs).toBeLessThanOrEqual(result.wallMs + 100)
    report('usage', {
      wallMs: result.wallMs,
      cpuMs: result.cpuMs,
      peakMemoryMiB: Math.round((result.peakMemoryBytes ?? 0) / MIB),
      peakPids: result.peakPids,
    })
  })
})
