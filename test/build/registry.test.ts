import { randomBytes } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { DockerfileBuilder } from '../../src/build/dockerfile-builder.ts'
import {
  deleteManifest,
  MANIFEST_ACCEPT,
  manifestExists,
  pushImage,
} from '../../src/build/registry.ts'
import { InfrastructureError } from '../../src/domain/errors.ts'
import {
  docker,
  makeRepo,
  REGISTRY,
  removeDir,
  removeImages,
  silentLogger,
  uniqueName,
} from './support.ts'

const repository = `proctor-test/${uniqueName('push')}`
const localName = `${uniqueName('proctor-test/push-src')}:t1`
const names = new Set<string>([localName])
const digests = new Set<string>()
let imageId = ''
let contextDir = ''

beforeAll(async () => {
  // A unique layer, so the digest is this run's own.
  contextDir = makeRepo({
    Dockerfile: `FROM proctor/busybox:1\nRUN echo ${randomBytes(8).toString('hex')} > /unique\n`,
  })
  const built = await new DockerfileBuilder(docker, silentLogger).build({
    contextDir,
    imageName: localName,
    labels: { 'proctor.test': 'registry' },
    timeoutMs: 60_000,
    maxImageBytes: 1024 ** 3,
    onLog: () => undefined,
  })
  imageId = built.imageId
})

afterAll(async () => {
  for (const digest of digests) await deleteManifest(REGISTRY, repository, digest)
  await removeImages(names)
  removeDir(contextDir)
})

describe('pushImage', () => {
  it('pushes to the registry and returns the digest the registry serves', async () => {
    names.add(`${REGISTRY}/${repository}:first`)

    const pushed = await pushImage(docker, {
      imageId,
      registry: REGISTRY,
      repository,
      tag: 'first',
    })
    digests.add(pushed.digest)

    expect(pushed.digest).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(pushed.reference).toBe(`${REGISTRY}/${repository}@${pushed.digest}`)
    const head = await fetch(`http://${REGISTRY}/v2/${repository}/manifests/first`, {
      method: 'HEAD',
      headers: { Accept: MANIFEST_ACCEPT },
    })
    expect(head.status).toBe(200)
    expect(head.headers.get('docker-content-digest')).toBe(pushed.digest)
    await expect(manifestExists(REGISTRY, repository, pushed.digest)).resolves.toBe(true)
  })

  it('gives the same digest when the same image is pushed under another tag', async () => {
    names.add(`${REGISTRY}/${repository}:first`)
    names.add(`${REGISTRY}/${repository}:second`)
    const first = await pushImage(docker, { imageId, registry: REGISTRY, repository, tag: 'first' })

    const second = await pushImage(docker, {
      imageId,
      registry: REGISTRY,
      repository,
      tag: 'second',
    })

    expect(second.digest).toBe(first.digest)
  })

  it('fails as proctor trouble after three tries when the registry is unreachable', async () => {
    names.add(`127.0.0.1:5999/${repository}:lost`)
    const started = Date.now()

    const error = await pushImage(docker, {
      imageId,
      registry: '127.0.0.1:5999',
      repository,
      tag: 'lost',
      retryDelaysMs: [10, 10],
    }).catch((err: unknown) => err)

    expect(error).toBeInstanceOf(InfrastructureError)
    expect((error as Error).message).toMatch(/failed 3 times: .*5999/)
    expect(Date.now() - started).toBeLessThan(30_000)
  })

  it('stops retrying when the caller aborts', async () => {
    names.add(`${REGISTRY}/${repository}:never`)
    const controller = new AbortController()
    const reason = new Error('shutting down')
    controller.abort(reason)

    await expect(
      pushImage(docker, {
        imageId,
        registry: REGISTRY,
        repository,
        tag: 'never',
        signal: controller.signal,
      }),
    ).rejects.toBe(reason)
    await expect(
      docker.getImage(`${REGISTRY}/${repository}:never`).inspect(),
    ).rejects.toMatchObject({
      statusCode: 404,
    })
  })
})

describe('manifestExists and deleteManifest', () => {
  it('deletes a manifest by digest, and says when it was already gone', async () => {
    names.add(`${REGISTRY}/${repository}:doomed`)
    const pushed = await pushImage(docker, {
      imageId,
      registry: REGISTRY,
      repository,
      tag: 'doomed',
    })

    await expect(deleteManifest(REGISTRY, repository, pushed.digest)).resolves.toBe(true)

    await expect(manifestExists(REGISTRY, repository, pushed.digest)).resolves.toBe(false)
    await expect(deleteManifest(REGISTRY, repository, pushed.digest)).resolves.toBe(false)
  })

  it('refuses a tag where a digest is required', async () => {
    await expect(deleteManifest(REGISTRY, repository, 'first')).rejects.toThrow(
      /not a sha256 digest/,
    )
  })

  it('reports an unreachable registry as proctor trouble', async () => {
    await expect(
      manifestExists('127.0.0.1:5999', repository, `sha256:${'0'.repeat(64)}`),
    ).rejects.toBeInstanceOf(InfrastructureError)
  })
})
