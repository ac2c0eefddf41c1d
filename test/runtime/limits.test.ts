import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { classifyParticipantRun } from '../../src/runtime/classify.ts'
import type { PhaseRunRequest } from '../../src/runtime/container-runtime.ts'
import {
  BUSYBOX,
  KILL_GRACE_MS,
  PYTHON,
  docker,
  eventually,
  imageId,
  leftovers,
  phaseRequest,
  report,
  runningContainer,
  testLabels,
  timedRun,
} from './support.ts'

const run = promisify(execFile)

// The fixture's bomb. busybox sh refuses `:` as a function name, hence `b`. It ends with its
// first shell, whose status is 0 or 2 ("can't fork") depending on which fork the limit refused
// first: with 0 the submission still fails, at the worker, for its missing output.
const SHELL_FORK_BOMB = ['sh', '-c', 'b(){ b|b& }; b; wait']
// A bomb that outlives refused forks, so the limit is held until the deadline.
const STUBBORN_FORK_BOMB = [
  'python3',
  '-c',
  'import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass',
]

// gVisor is optional hardening: its case runs only where an operator registered it.
const engineInfo = (await docker.info()) as { Runtimes?: Record<string, unknown> }
const engineRuntimes = Object.keys(engineInfo.Runtimes ?? {})
const hasRunsc = engineRuntimes.includes('runsc')
if (!hasRunsc) {
  console.warn(
    `[runtime] runsc is not registered with the engine (docker info lists ${engineRuntimes.join(', ')}): ` +
      'the gVisor fork-bomb case is skipped',
  )
}

describe('DockerRuntime limits', () => {
  const labels = testLabels('limits')
  const seen: Array<string | null> = []
  const folders: string[] = []
  let busybox: string
  let python: string

  beforeAll(async () => {
    busybox = await imageId(BUSYBOX)
    python = await imageId(PYTHON)
  })

  afterEach(async () => {
    expect(await leftovers({ ids: seen, labels })).toEqual([])
  })

  afterAll(async () => {
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })))
  })

  async function outputFolder(): Promise<string> {
    const folder = await mkdtemp(path.join(tmpdir(), 'proctor-runtime-output-'))
    folders.push(folder)
    return folder
  }

  async function runPhase(request: PhaseRunRequest) {
    const timed = await timedRun(request)
    seen.push(timed.result.containerId)
    return timed
  }

  it('stops a program that sleeps forever at the time limit and removes it', async () => {
    const limits = { ...phaseRequest(busybox, [], labels).limits, timeSeconds: 3 }
    const { result, ms } = await runPhase(
      phaseRequest(busybox, ['sleep', '3600'], labels, { limits }),
    )

    expect(result.outcome).toBe('timed_out')
    expect(classifyParticipantRun(result, limits)).toEqual({
      code: 'time_limit',
      message: 'ran longer than the time limit of 3 s',
    })
    // The init forwards SIGTERM to sleep, which dies at once: no grace period is needed.
    expect(result.wallMs).toBeGreaterThanOrEqual(3_000)
    expect(result.wallMs).toBeLessThan(3_000 + KILL_GRACE_MS)
    report('sleeper', { wallMs: result.wallMs, callMs: ms, exitCode: result.exitCode })
  })

  it('kills a program that ignores SIGTERM after the grace period', async () => {
    const limits = { ...phaseRequest(busybox, [], labels).limits, timeSeconds: 1 }
    const command = ['sh', '-c', "trap '' TERM; while :; do :; done"]
    const { result, ms } = await runPhase(phaseRequest(busybox, command, labels, { limits }))

    expect(result).toMatchObject({ outcome: 'timed_out', exitCode: 137, signal: 'SIGKILL' })
    expect(classifyParticipantRun(result, limits)?.code).toBe('time_limit')
    expect(result.wallMs).toBeGreaterThanOrEqual(1_000 + KILL_GRACE_MS)
    expect(result.wallMs).toBeLessThan(1_000 + KILL_GRACE_MS + 1_000)
    report('ignores SIGTERM', {
      wallMs: result.wallMs,
      pastDeadlineAndGraceMs: result.wallMs - 1_000 - KILL_GRACE_MS,
      callMs: ms,
      cpuMs: result.cpuMs,
    })
  })

  it('reports the memory limit for a program that allocates past it', async () => {
    const limits = { ...phaseRequest(python, [], labels).limits, memoryMb: 128 }
    const command = ['python3', '-c', 'x = bytearray(2 * 1024**3)']
    const { result, ms } = await runPhase(phaseRequest(python, command, labels, { limits }))

    expect(result).toMatchObject({ outcome: 'oom_killed', exitCode: 137 })
    expect(classifyParticipantRun(result, limits)).toEqual({
      code: 'memory_limit',
      message: 'used more than the memory limit of 128 MiB',
    })
    report('memory hog', {
      wallMs: result.wallMs,
      callMs: ms,
      peakMemoryBytes: result.peakMemoryBytes,
    })
  })

  it('reports the memory limit for a program that fills /tmp past it', async () => {
    const limits = { ...phaseRequest(busybox, [], labels).limits, memoryMb: 64, tmpfsMb: 256 }
    const command = ['dd', 'if=/dev/zero', 'of=/tmp/fill', 'bs=1M', 'count=200']
    const { result } = await runPhase(phaseRequest(busybox, command, labels, { limits }))

    expect(result.outcome).toBe('oom_killed')
    expect(classifyParticipantRun(result, limits)?.code).toBe('memory_limit')
  })

  it('holds a shell fork bomb at the process limit until its first shell ends', async () => {
    const limits = { ...phaseRequest(busybox, [], labels).limits, pids: 32 }
    const { result, ms } = await runPhase(
      phaseRequest(busybox, SHELL_FORK_BOMB, labels, { limits }),
    )

    expect(result.outcome).toBe('exited')
    expect([0, 2]).toContain(result.exitCode)
    // Whether a fork fails before the first shell ends is a race: exit 2 says one did, and
    // then the shell says so. The limit itself is shown by the stubborn bomb below.
    if (result.exitCode === 2) expect(result.log.text).toContain("can't fork")
    expect(result.peakPids ?? 0).toBeLessThanOrEqual(32)
    report('fork bomb (shell, fixture)', {
      exitCode: result.exitCode,
      wallMs: result.wallMs,
      callMs: ms,
    })
  })

  it('holds a stubborn fork bomb at the process limit while the host stays responsive', async () => {
    const bombLabels = { ...labels, 'proctor.case': 'fork-bomb' }
    const limits = {
      ...phaseRequest(python, [], labels).limits,
      pids: 32,
      memoryMb: 512,
      timeSeconds: 3,
    }
    const pending = runPhase(phaseRequest(python, STUBBORN_FORK_BOMB, bombLabels, { limits }))

    const id = await eventually(() => runningContainer(bombLabels), 5_000, 'the fork bomb to start')
    const pids = await eventually(
      async () => {
        const stats = await docker.getContainer(id).stats({ stream: false, 'one-shot': true })
        const current = stats.pids_stats?.current ?? 0
        return current >= 30 ? current : undefined
      },
      2_500,
      'the fork bomb to reach the limit',
    )
    const spawnStarted = performance.now()
    await run('true')
    const spawnMs = performance.now() - spawnStarted

    const { result } = await pending
    expect(pids).toBeLessThanOrEqual(32)
    expect(spawnMs).toBeLessThan(500)
    expect(result.outcome).toBe('timed_out')
    expect(result.peakPids ?? 0).toBeLessThanOrEqual(32)
    expect(classifyParticipantRun(result, limits)?.code).toBe('time_limit')
    report('fork bomb (runc)', {
      pidsAtLimit: pids,
      peakPids: result.peakPids,
      hostSpawnMs: Math.round(spawnMs),
      wallMs: result.wallMs,
    })
  })

  it.skipIf(!hasRunsc)(
    `holds a stubborn fork bomb under gVisor${hasRunsc ? '' : ' (skipped: runsc is not registered in docker info)'}`,
    async () => {
      // Under runsc the pids limit is not applied (it would count gVisor's own threads and
      // kill the sandbox): the memory limit holds the bomb, and the host stays responsive.
      const limits = {
        ...phaseRequest(python, [], labels).limits,
        pids: 32,
        memoryMb: 256,
        timeSeconds: 20,
      }
      const request = phaseRequest(python, STUBBORN_FORK_BOMB, labels, { limits, runtime: 'runsc' })
      const pending = runPhase(request)
      const spawnStarted = performance.now()
      await run('true')
      const spawnMs = performance.now() - spawnStarted
      const { result } = await pending
      expect(spawnMs).toBeLessThan(500)
      expect(classifyParticipantRun(result, limits)?.code).toBe('memory_limit')
      expect(result.wallMs).toBeLessThan(20_000)
    },
  )

  it('reports output past the limit found after a clean exit', async () => {
    const outputDir = await outputFolder()
    const limits = { ...phaseRequest(busybox, [], labels).limits, outputMb: 1 }
    const command = ['dd', 'if=/dev/zero', 'of=/proctor/output/big', 'bs=1M', 'count=3']
    const { result } = await runPhase(phaseRequest(busybox, command, labels, { limits, outputDir }))

    expect(result).toMatchObject({ outcome: 'exited', exitCode: 0, outputBytes: 3 * 1024 * 1024 })
    expect(classifyParticipantRun(result, limits)).toEqual({
      code: 'output_too_large',
      message: 'wrote 3.0 MiB, more than the output limit of 1 MiB',
    })
  })

  it('stops a program that keeps writing output past the limit', async () => {
    const outputDir = await outputFolder()
    const limits = { ...phaseRequest(busybox, [], labels).limits, outputMb: 2, timeSeconds: 30 }
    const command = [
      'sh',
      '-c',
      'while :; do head -c 1048576 /dev/zero >> /proctor/output/grows; sleep 0.1; done',
    ]
    const { result, ms } = await runPhase(
      phaseRequest(busybox, command, labels, { limits, outputDir }),
    )

    expect(result.outcome).toBe('output_exceeded')
    expect(result.outputBytes).toBeGreaterThan(2 * 1024 * 1024)
    expect(result.outputBytes).toBeLessThan(8 * 1024 * 1024)
    expect(classifyParticipantRun(result, limits)?.code).toBe('output_too_large')
    report('output watchdog', { outputBytes: result.outputBytes, callMs: ms })
  })

  it('kills and removes the container when the caller cancels', async () => {
    const cancelLabels = { ...labels, 'proctor.case': 'cancel' }
    const controller = new AbortController()
    const pending = runPhase(
      phaseRequest(busybox, ['sleep', '3600'], cancelLabels, { signal: controller.signal }),
    )
    await eventually(() => runningContainer(cancelLabels), 5_000, 'the container to start')
    const abortedAt = performance.now()
    controller.abort()
    const { result } = await pending
    const cancelMs = performance.now() - abortedAt

    expect(result.outcome).toBe('cancelled')
    expect(result.containerId).not.toBeNull()
    expect(cancelMs).toBeLessThan(2_000)
    expect(classifyParticipantRun(result, phaseRequest(busybox, [], labels).limits)?.code).toBe(
      'cancelled',
    )
    report('cancel', { abortToRemovedMs: Math.round(cancelMs) })
  })

  it('creates nothing when the caller has already cancelled', async () => {
    const controller = new AbortController()
    controller.abort()
    const { result } = await runPhase(
      phaseRequest(busybox, ['true'], labels, { signal: controller.signal }),
    )
    expect(result).toMatchObject({ outcome: 'cancelled', exitCode: null, containerId: null })
  })
})
