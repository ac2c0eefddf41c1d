import Docker from 'dockerode'
import { afterEach, describe, expect, it } from 'vitest'

import type { BuildRequest } from '../../src/build/builder.ts'
import { DockerfileBuilder } from '../../src/build/dockerfile-builder.ts'
import { InfrastructureError, SubmissionFailure } from '../../src/domain/errors.ts'
import {
  captureLog,
  containerExists,
  copyFixture,
  docker,
  makeRepo,
  removeDir,
  removeImages,
  removeStepImages,
  runningIds,
  silentLogger,
  uniqueName,
  waitFor,
} from './support.ts'

const builder = new DockerfileBuilder(docker, silentLogger)
const images = new Set<string>()
const dirs = new Set<string>()

function request(contextDir: string, overrides: Partial<BuildRequest> = {}): BuildRequest {
  const imageName = `${uniqueName('proctor-test/dockerfile')}:t1`
  images.add(imageName)
  dirs.add(contextDir)
  return {
    contextDir,
    imageName,
    labels: { 'proctor.test': 'dockerfile' },
    timeoutMs: 120_000,
    maxImageBytes: 1024 ** 3,
    onLog: () => undefined,
    ...overrides,
  }
}

async function failureOf(promise: Promise<unknown>): Promise<SubmissionFailure> {
  const error = await promise.catch((err: unknown) => err)
  expect(error).toBeInstanceOf(SubmissionFailure)
  return error as SubmissionFailure
}

afterEach(async () => {
  await removeImages(images)
  images.clear()
  for (const dir of dirs) removeDir(dir)
  dirs.clear()
})

describe('DockerfileBuilder', () => {
  it('reports the engine version', async () => {
    await expect(builder.version()).resolves.toMatch(/^docker-engine 20\.10\./)
  })

  it('builds a Dockerfile repository with its labels and streams the output', async () => {
    const log = captureLog()
    const req = request(copyFixture('dockerfile-ok'), { onLog: log.onLog })

    const result = await builder.build(req)

    expect(result).toMatchObject({ builder: 'dockerfile', buildpack: null, notes: [] })
    expect(result.builderVersion).toMatch(/^docker-engine /)
    expect(result.imageId).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(result.sizeBytes).toBeGreaterThan(100 * 1024 * 1024)
    expect(log.text()).toContain('hello from the build')
    expect(log.text()).toContain('predict.py self-test passed')
    const info = await docker.getImage(req.imageName).inspect()
    expect(info.Id).toBe(result.imageId)
    expect(info.Config.Labels).toMatchObject({ 'proctor.test': 'dockerfile' })
  })

  it('reads binder/Dockerfile like repo2docker does', async () => {
    const log = captureLog()

    const result = await builder.build(request(copyFixture('binder-dir'), { onLog: log.onLog }))

    expect(result.notes).toEqual([expect.stringContaining('binder/')])
    expect(log.text()).toContain('built from binder/Dockerfile')
    expect(log.text()).not.toContain('the root Dockerfile was used')
  })

  it('fails a step that exits non-zero as build_failed with the end of the log', async () => {
    const log = captureLog()

    const failure = await failureOf(
      builder.build(request(copyFixture('build-fails'), { onLog: log.onLog })),
    )
    await removeStepImages(log.text())

    expect(failure.code).toBe('build_failed')
    expect(failure.message).toMatch(/returned a non-zero code: 3/)
    expect(failure.log).toContain('step one is fine')
    expect(failure.log).toContain('about to fail')
  })

  it('fails a Dockerfile syntax error as build_failed', async () => {
    const failure = await failureOf(
      builder.build(request(makeRepo({ Dockerfile: 'FROM proctor/busybox:1\nRUNN echo\n' }))),
    )

    expect(failure.code).toBe('build_failed')
    expect(failure.message).toMatch(/unknown instruction: RUNN/i)
  })

  it('explains a base image that cannot be pulled', async () => {
    const dir = makeRepo({ Dockerfile: 'FROM proctor-test/missing-base:1\nRUN true\n' })

    const failure = await failureOf(builder.build(request(dir)))

    expect(failure.code).toBe('build_failed')
    expect(failure.message).toMatch(/^the base image proctor-test\/missing-base:1 cannot be pulled/)
  })

  it('fails a repository without a Dockerfile', async () => {
    const failure = await failureOf(builder.build(request(copyFixture('requirements-txt'))))

    expect(failure.code).toBe('build_failed')
    expect(failure.message).toMatch(/has no Dockerfile/)
  })

  it('sends the context filtered by .dockerignore', async () => {
    const dir = makeRepo({
      Dockerfile: 'FROM proctor/busybox:1\nCOPY . /ctx\nRUN find /ctx -type f | sort\n',
      '.dockerignore': 'secret.txt\nnested/ignored\n',
      'kept.txt': 'kept',
      'secret.txt': 'secret',
      'nested/kept-too.txt': 'kept',
      'nested/ignored/file.txt': 'ignored',
    })
    const log = captureLog()

    await builder.build(request(dir, { onLog: log.onLog }))

    expect(log.text()).toContain('/ctx/kept.txt')
    expect(log.text()).toContain('/ctx/nested/kept-too.txt')
    expect(log.text()).not.toContain('secret.txt')
    expect(log.text()).not.toContain('nested/ignored')
  })

  it('passes the memory limit to the build containers', async () => {
    const dir = makeRepo({
      Dockerfile:
        'FROM proctor/busybox:1\nRUN echo "limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)"\n',
    })
    const log = captureLog()

    await builder.build(request(dir, { onLog: log.onLog, memoryBytes: 256 * 1024 * 1024 }))

    expect(log.text()).toContain('limit=268435456')
  })

  it('stops a build at its time limit and removes its build container', async () => {
    const log = captureLog()

    const failure = await failureOf(
      builder.build(request(copyFixture('build-slow'), { onLog: log.onLog, timeoutMs: 3000 })),
    )

    expect(failure.code).toBe('build_failed')
    expect(failure.message).toMatch(/took longer than 3 s/)
    const ids = runningIds(log.text())
    expect(ids).toHaveLength(1)
    await expect(waitFor(async () => !(await containerExists(ids[0] ?? '')))).resolves.toBe(true)
  })

  it('refuses an image over the size limit and removes it', async () => {
    const req = request(copyFixture('binder-dir'), { maxImageBytes: 1024 })

    const failure = await failureOf(builder.build(req))

    expect(failure.code).toBe('image_too_large')
    await expect(docker.getImage(req.imageName).inspect()).rejects.toMatchObject({
      statusCode: 404,
    })
  })

  it('reports an unreachable engine as proctor trouble', async () => {
    const broken = new DockerfileBuilder(
      new Docker({ socketPath: '/nonexistent/docker.sock', version: 'v1.41' }),
      silentLogger,
    )

    await expect(broken.build(request(copyFixture('dockerfile-ok')))).rejects.toBeInstanceOf(
      InfrastructureError,
    )
  })
})
