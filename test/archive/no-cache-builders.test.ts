import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { describeBuildInputs, findBaseImage } from '../../src/archive/build-inputs.ts'
import { createNoCacheBuilders, type NoCacheBuilders } from '../../src/archive/no-cache-builders.ts'
import type { Builder } from '../../src/build/builder.ts'
import { DockerfileBuilder } from '../../src/build/dockerfile-builder.ts'
import { Repo2DockerBuilder } from '../../src/build/repo2docker.ts'
import { TEST_ENV } from '../support/env.ts'
import { assertServicesUp } from '../support/services.ts'
import { docker, removeImages, silentLog } from './support/archive-context.ts'

const REPO2DOCKER = path.join(TEST_ENV.repoRoot, '.venv/bin/repo2docker')
const names = new Set<string>()
let context = ''
let noCache: NoCacheBuilders

async function build(builder: Builder, tag: string): Promise<{ imageId: string; log: string }> {
  const chunks: string[] = []
  const imageName = `proctor-test/nocache-${builder.name}:${tag}-${randomBytes(3).toString('hex')}`
  names.add(imageName)
  const result = await builder.build({
    contextDir: context,
    imageName,
    labels: { 'proctor.test': 'nocache' },
    timeoutMs: 120_000,
    maxImageBytes: 1024 ** 3,
    onLog: (text) => chunks.push(text),
  })
  names.add(result.imageId)
  return { imageId: result.imageId, log: chunks.join('') }
}

beforeAll(async () => {
  await assertServicesUp(['docker', 'images'])
  context = mkdtempSync(path.join(os.tmpdir(), 'proctor-nocache-'))
  writeFileSync(
    path.join(context, 'Dockerfile'),
    `FROM ${TEST_ENV.busyboxImage}\nRUN echo ${randomBytes(8).toString('hex')} > /stamp\nCOPY Dockerfile /copied\n`,
  )
  noCache = await createNoCacheBuilders(docker, REPO2DOCKER, silentLog)
})

afterAll(async () => {
  await noCache?.dispose()
  await removeImages(names)
  rmSync(context, { recursive: true, force: true })
})

describe.each([
  ['dockerfile', () => new DockerfileBuilder(docker, silentLog)],
  ['repo2docker', () => new Repo2DockerBuilder(REPO2DOCKER, silentLog, { docker })],
] as const)('the %s builder without cache', (name, cached) => {
  it('runs every step again where the ordinary builder reuses the engine’s layers', async () => {
    const first = await build(cached(), 'first')
    const again = await build(cached(), 'again')
    const rebuilt = await build(noCache.builders[name], 'nocache')

    // The ordinary builder takes every step from the cache: the same image.
    expect(again.log).toMatch(/Using cache/)
    expect(again.imageId).toBe(first.imageId)
    // Without cache each step runs: new layers, a new image.
    expect(rebuilt.log).not.toMatch(/Using cache/)
    expect(rebuilt.log).toMatch(/Running in [0-9a-f]{12}/)
    expect(rebuilt.imageId).not.toBe(first.imageId)
    expect(await noCache.builders[name].version()).toBe(await cached().version())

    // What a rebuild needs is found from the built image: the base the FROM resolved to.
    const busybox = await docker.getImage(TEST_ENV.busyboxImage).inspect()
    expect(await findBaseImage(docker, rebuilt.imageId, context)).toEqual({
      name: TEST_ENV.busyboxImage,
      id: busybox.Id,
    })
    const inputs = await describeBuildInputs(
      docker,
      {
        imageId: first.imageId,
        sizeBytes: 0,
        builder: name,
        builderVersion: '1',
        buildpack: null,
        notes: [],
      },
      { timeoutMs: 1000, memoryBytes: undefined, maxImageBytes: 2000, labels: { a: 'b' } },
      { contextDir: context, proctorVersion: '0.1.0' },
    )
    expect(inputs).toMatchObject({
      v: 1,
      baseImage: { id: busybox.Id },
      proctorVersion: '0.1.0',
      settings: { builder: name, memoryBytes: null },
    })
  }, 240_000)
})
