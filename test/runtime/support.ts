import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'

import type Docker from 'dockerode'
import pino from 'pino'

import type { PhaseRunRequest, PhaseRunResult } from '../../src/runtime/container-runtime.ts'
import { connectDocker } from '../../src/runtime/docker-client.ts'
import { DockerRuntime } from '../../src/runtime/docker-runtime.ts'

/**
 * Shared pieces of the runtime's integration tests: one engine client, a runtime with a short
 * grace period, request builders, test images built from tiny Dockerfiles, and the check
 * that a test left no container behind.
 */

export const BUSYBOX = process.env.PROCTOR_BUSYBOX_IMAGE ?? 'proctor/busybox:1'
export const PYTHON = process.env.PROCTOR_PYTHON_IMAGE ?? 'proctor/python:3.11'

export const KILL_GRACE_MS = 1_000

export const docker = connectDocker()
export const logger = pino({ level: process.env.PROCTOR_TEST_LOG ?? 'silent' })
export const runtime = new DockerRuntime(docker, logger, {
  killGraceMs: KILL_GRACE_MS,
  outputPollMs: 200,
})

/** Labels every container of one test file, so leftovers are found even without an id. */
export function testLabels(file: string): Record<string, string> {
  return { 'proctor.test': `${file}-${randomUUID().slice(0, 8)}` }
}

export async function imageId(reference: string): Promise<string> {
  return (await docker.getImage(reference).inspect()).Id
}

/** A request with small limits; the test overrides what it is about. */
export function phaseRequest(
  image: string,
  command: string[] | undefined,
  labels: Record<string, string>,
  overrides: Partial<PhaseRunRequest> = {},
): PhaseRunRequest {
  return {
    image,
    command,
    user: '1000:1000',
    env: {},
    mounts: [],
    network: 'none',
    runtime: 'runc',
    gpus: 0,
    limits: { timeSeconds: 20, memoryMb: 128, cpus: 1, pids: 64, tmpfsMb: 16, outputMb: 8 },
    labels,
    logLimitBytes: 64 * 1024,
    trustProgress: false,
    ...overrides,
  }
}

/** Builds an image from a Dockerfile (FROM a local base: nothing is pulled); returns its id. */
export async function buildTestImage(tag: string, dockerfile: string): Promise<string> {
  const context = await mkdtemp(path.join(tmpdir(), 'proctor-runtime-image-'))
  try {
    await writeFile(path.join(context, 'Dockerfile'), dockerfile)
    const stream = await docker.buildImage(
      { context, src: ['Dockerfile'] },
      { t: tag, rm: true, forcerm: true },
    )
    const events = await new Promise<Array<{ error?: string; errorDetail?: { message?: string } }>>(
      (resolve, reject) =>
        docker.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out))),
    )
    // The engine answers 200 even when the build fails: the error is an event in the stream.
    const failure = events.find((event) => event.error ?? event.errorDetail)
    if (failure)
      throw new Error(`building ${tag} failed: ${failure.errorDetail?.message ?? failure.error}`)
    return await imageId(tag)
  } finally {
    await rm(context, { recursive: true, force: true })
  }
}

export async function removeImage(reference: string): Promise<void> {
  await docker.getImage(reference).remove({ force: true, noprune: false })
}

/**
 * Every container this test could have left, from the list of ALL containers (not a label
 * filter, which would miss one that lost its labels): by id, by the file's test label, or by
 * an image the file built. Other work may run containers on the same engine meanwhile.
 */
export async function leftovers(options: {
  ids?: Array<string | null>
  labels?: Record<string, string>
  images?: string[]
}): Promise<Docker.ContainerInfo[]> {
  const all = await docker.listContainers({ all: true })
  const ids = new Set(options.ids?.filter((id) => id !== null))
  const images = new Set(options.images)
  const labelEntries = Object.entries(options.labels ?? {})
  return all.filter(
    (info) =>
      ids.has(info.Id) ||
      images.has(info.ImageID) ||
      (labelEntries.length > 0 && labelEntries.every(([key, value]) => info.Labels[key] === value)),
  )
}

/** Polls until `check` returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (performance.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** The running container of a test, found by its labels. */
export async function runningContainer(
  labels: Record<string, string>,
): Promise<string | undefined> {
  const found = await docker.listContainers({
    filters: {
      label: Object.entries(labels).map(([key, value]) => `${key}=${value}`),
      status: ['running'],
    },
  })
  return found[0]?.Id
}

/** Runs a phase and times it. */
export async function timedRun(
  request: PhaseRunRequest,
): Promise<{ result: PhaseRunResult; ms: number }> {
  const started = performance.now()
  const result = await runtime.runPhase(request)
  return { result, ms: Math.round(performance.now() - started) }
}

/** Prints a measured figure with the test output (vitest shows console output per test). */
export function report(what: string, values: Record<string, unknown>): void {
  console.log(`[runtime figures] ${what}: ${JSON.stringify(values)}`)
}
