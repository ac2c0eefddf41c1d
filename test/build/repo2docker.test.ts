import { mkdirSync } from 'node:fs'
import path from 'node:path'

import Docker from 'dockerode'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

import type { BuildRequest } from '../../src/build/builder.ts'
import { detectBuildpack, Repo2DockerBuilder } from '../../src/build/repo2docker.ts'
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
  REPO2DOCKER,
  runningIds,
  silentLogger,
  uniqueName,
  waitFor,
} from './support.ts'

const builder = new Repo2DockerBuilder(REPO2DOCKER, silentLogger, { docker })
const images = new Set<string>()
const dirs = new Set<string>()

function request(contextDir: string, overrides: Partial<BuildRequest> = {}): BuildRequest {
  const imageName = `${uniqueName('proctor-test/r2d')}:t1`
  images.add(imageName)
  dirs.add(contextDir)
  return {
    contextDir,
    imageName,
    labels: { 'proctor.test': 'repo2docker' },
    timeoutMs: 120_000,
    maxImageBytes: 1024 ** 3,
    onLog: () => undefined,
    ...overrides,
  }
}

afterEach(async () => {
  await removeImages(images)
  images.clear()
  for (const dir of dirs) removeDir(dir)
  dirs.clear()
})

afterAll(async () => {
  await removeImages(images)
})

describe('Repo2DockerBuilder', () => {
  it('reports the repo2docker version', async () => {
    await expect(builder.version()).resolves.toBe('2024.07.0')
  })

  it('builds a Dockerfile repository offline and streams its output', async () => {
    const log = captureLog()
    const req = request(copyFixture('dockerfile-ok'), { onLog: log.onLog })

    const result = await builder.build(req)

    expect(result).toMatchObject({
      builder: 'repo2docker',
      builderVersion: '2024.07.0',
      buildpack: 'DockerBuildPack',
      notes: [],
    })
    expect(result.imageId).toMatch(/^sha256:[0-9a-f]{64}$/)
    expect(result.sizeBytes).toBeGreaterThan(0)
    expect(log.text()).toContain('hello from the build')
    expect(log.text()).toContain('predict.py self-test passed')
    expect(log.text()).toContain('Using DockerBuildPack builder')
    const info = await docker.getImage(req.imageName).inspect()
    expect(info.Id).toBe(result.imageId)
    expect(info.Config.Labels).toMatchObject({
      'proctor.test': 'repo2docker',
      'repo2docker.version': '2024.07.0',
    })
  })

  it('builds from binder/ and says the root was ignored', async () => {
    const log = captureLog()

    const result = await builder.build(request(copyFixture('binder-dir'), { onLog: log.onLog }))

    expect(result.buildpack).toBe('DockerBuildPack')
    expect(result.notes).toEqual([expect.stringContaining('binder/')])
    expect(log.text()).toContain('[proctor] built from the configuration in binder/')
    expect(log.text()).toContain('built from binder/Dockerfile')
    expect(log.text()).not.toContain('the root Dockerfile was used')
  })

  it('fails a broken Dockerfile as build_failed with the end of the log', async () => {
    const log = captureLog()

    const error = await builder
      .build(request(copyFixture('build-fails'), { onLog: log.onLog }))
      .catch((err: unknown) => err)
    await removeStepImages(log.text())

    expect(error).toBeInstanceOf(SubmissionFailure)
    const failure = error as SubmissionFailure
    expect(failure.code).toBe('build_failed')
    expect(failure.message).toMatch(/returned a non-zero code: 3/)
    expect(failure.log).toContain('step one is fine')
    expect(failure.log).toContain('about to fail')
    expect(failure.log?.split('\n').length).toBeLessThanOrEqual(40)
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
    const started = Date.now()

    const error = await builder
      .build(request(copyFixture('build-slow'), { onLog: log.onLog, timeoutMs: 6000 }))
      .catch((err: unknown) => err)

    expect(error).toBeInstanceOf(SubmissionFailure)
    expect((error as SubmissionFailure).code).toBe('build_failed')
    expect((error as Error).message).toMatch(/took longer than 6 s/)
    expect(Date.now() - started).toBeLessThan(30_000)
    const ids = runningIds(log.text())
    expect(ids).toHaveLength(1)
    await expect(waitFor(async () => !(await containerExists(ids[0] ?? '')))).resolves.toBe(true)
  })

  it('stops when the caller aborts and rethrows the reason', async () => {
    const controller = new AbortController()
    const reason = new Error('lease lost')
    const log = captureLog()
    const onLog = (text: string) => {
      log.onLog(text)
      if (text.includes('Running in')) controller.abort(reason)
    }

    const build = builder.build(
      request(copyFixture('build-slow'), { onLog, signal: controller.signal }),
    )

    await expect(build).rejects.toBe(reason)
    const ids = runningIds(log.text())
    await expect(waitFor(async () => !(await containerExists(ids[0] ?? '')))).resolves.toBe(true)
  })

  it('refuses an image over the size limit and removes it', async () => {
    const req = request(copyFixture('binder-dir'), { maxImageBytes: 1024 })

    const error = await builder.build(req).catch((err: unknown) => err)

    expect(error).toBeInstanceOf(SubmissionFailure)
    expect((error as SubmissionFailure).code).toBe('image_too_large')
    expect((error as Error).message).toMatch(/over the 0\.0 MB limit/)
    await expect(docker.getImage(req.imageName).inspect()).rejects.toMatchObject({
      statusCode: 404,
    })
  })

  it('reports an unreachable engine as proctor trouble', async () => {
    const broken = new Repo2DockerBuilder(REPO2DOCKER, silentLogger, {
      docker: new Docker({ socketPath: '/nonexistent/docker.sock', version: 'v1.41' }),
      dockerHost: 'unix:///nonexistent/docker.sock',
    })

    const error = await broken
      .build(request(copyFixture('dockerfile-ok')))
      .catch((err: unknown) => err)

    expect(error).toBeInstanceOf(InfrastructureError)
    expect((error as Error).message).toMatch(/could not reach the Docker Engine/)
  })

  it('fails a repository with both binder/ and .binder/', async () => {
    const dir = copyFixture('binder-dir')
    mkdirSync(path.join(dir, '.binder'))

    const error = await builder.build(request(dir)).catch((err: unknown) => err)

    expect(error).toBeInstanceOf(SubmissionFailure)
    expect(error).toMatchObject({ code: 'build_failed' })
    expect((error as Error).message).toMatch(/both binder\/ and \.binder\//)
  })
})

describe('detectBuildpack', () => {
  it.each([
    ['requirements-txt', 'PythonBuildPack', ['requirements.txt']],
    ['environment-yml', 'CondaBuildPack', ['environment.yml']],
    ['apt-txt', 'PythonBuildPack', ['apt.txt']],
    ['dockerfile-ok', 'DockerBuildPack', ['Dockerfile']],
  ])('detects %s as %s without building', async (fixture, buildpack, files) => {
    const dir = copyFixture(fixture)
    dirs.add(dir)

    await expect(detectBuildpack(dir, { binary: REPO2DOCKER })).resolves.toEqual({
      buildpack,
      binderDir: null,
      files,
    })
  })

  it('reads only binder/ when the repository has one', async () => {
    const dir = copyFixture('binder-dir')
    dirs.add(dir)

    await expect(detectBuildpack(dir, { binary: REPO2DOCKER })).resolves.toEqual({
      buildpack: 'DockerBuildPack',
      binderDir: 'binder',
      files: ['Dockerfile'],
    })
  })
})
