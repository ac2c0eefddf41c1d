import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

import { fetchCommit } from '../../src/build/fetch.ts'
import { InfrastructureError, SubmissionFailure } from '../../src/domain/errors.ts'
import { copyFixture, git, GIT_ROOT, GIT_URL, makeRepo, removeDir, uniqueName } from './support.ts'

/** This file's repositories, served by the machine's git daemon under a folder of their own. */
const group = uniqueName('test-build')
const dirs = new Set<string>()

interface PushedProject {
  url: string
  sha: string
  work: string
}

/** Creates a bare repository on the git server and pushes `work`'s history and tags to it. */
function publish(name: string, work: string, ...refs: string[]): PushedProject {
  const bare = path.join(GIT_ROOT, group, `${name}.git`)
  git(os.tmpdir(), 'init', '--quiet', '--bare', bare)
  const url = `${GIT_URL}/${group}/${name}.git`
  git(work, 'push', '--quiet', '--force', url, ...refs)
  return { url, sha: git(work, 'rev-parse', 'HEAD'), work }
}

/** A working repository with one commit of `files` (or a fixture), tagged `submission-1`. */
function commitProject(source: string | Record<string, string>): string {
  const work = typeof source === 'string' ? copyFixture(source) : makeRepo(source)
  dirs.add(work)
  git(work, 'init', '--quiet', '--initial-branch=main')
  git(work, 'add', '--all')
  git(work, 'commit', '--quiet', '--message', 'submission')
  git(work, 'tag', 'submission-1')
  return work
}

function checkoutDir(): string {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'proctor-fetch-')), 'repo')
  dirs.add(path.dirname(dir))
  return dir
}

function fetchOptions(project: { url: string; sha: string }, overrides = {}) {
  return {
    cloneUrl: project.url,
    commitSha: project.sha,
    dir: checkoutDir(),
    timeoutMs: 60_000,
    maxBytes: 50 * 1024 * 1024,
    ...overrides,
  }
}

let project: PushedProject

beforeAll(() => {
  project = publish('project', commitProject('dockerfile-ok'), 'main', 'submission-1')
})

afterEach(() => {
  for (const dir of dirs) if (dir !== project.work) removeDir(dir)
})

afterAll(() => {
  removeDir(project.work)
  removeDir(path.join(GIT_ROOT, group))
})

describe('fetchCommit', () => {
  it('checks out the tagged commit, detached, from the git server', async () => {
    const options = fetchOptions(project)

    const { bytes } = await fetchCommit(options)

    expect(bytes).toBeGreaterThan(0)
    expect(readFileSync(path.join(options.dir, 'predict.py'), 'utf8')).toContain('self-test')
    expect(git(options.dir, 'rev-parse', 'HEAD')).toBe(project.sha)
    expect(() => git(options.dir, 'symbolic-ref', '--quiet', 'HEAD')).toThrow()
    expect(git(options.dir, 'status', '--porcelain')).toBe('')
  })

  it('fails a commit the repository does not have as commit_missing', async () => {
    const missing = 'f'.repeat(40)

    const error = await fetchCommit(fetchOptions({ url: project.url, sha: missing })).catch(
      (err: unknown) => err,
    )

    expect(error).toBeInstanceOf(SubmissionFailure)
    expect(error).toMatchObject({
      code: 'commit_missing',
      message: `commit ${missing} is not in ${group}/project: the tag was moved or the history rewritten; push the tag again`,
    })
  })

  it('fetches a commit no ref reaches while the server keeps it, and fails it once pruned', async () => {
    const work = commitProject({ 'run.sh': 'echo first\n' })
    const first = publish('rewritten', work, 'main', 'submission-1')
    git(work, 'checkout', '--quiet', '--orphan', 'rewrite')
    git(work, 'commit', '--quiet', '--message', 'rewritten history')
    git(work, 'tag', '--force', 'submission-1')
    git(work, 'push', '--quiet', '--force', first.url, 'rewrite:main', 'submission-1')

    const kept = await fetchCommit(fetchOptions(first))
    expect(kept.bytes).toBeGreaterThan(0)

    const bare = path.join(GIT_ROOT, group, 'rewritten.git')
    git(bare, 'reflog', 'expire', '--expire=now', '--all')
    git(bare, 'gc', '--quiet', '--prune=now')
    await expect(fetchCommit(fetchOptions(first))).rejects.toMatchObject({ code: 'commit_missing' })
  })

  it('refuses a checkout larger than the limit', async () => {
    const error = await fetchCommit(fetchOptions(project, { maxBytes: 1024 })).catch(
      (err: unknown) => err,
    )

    expect(error).toBeInstanceOf(SubmissionFailure)
    expect(error).toMatchObject({ code: 'build_failed' })
    expect((error as Error).message).toMatch(/over the 0\.0 MB limit/)
  })

  it('reports an unreachable git server as proctor trouble', async () => {
    const error = await fetchCommit(
      fetchOptions({ url: 'git://127.0.0.1:1/nothing.git', sha: project.sha }),
    ).catch((err: unknown) => err)

    expect(error).toBeInstanceOf(InfrastructureError)
    expect((error as Error).message).toMatch(
      /cannot reach the git server for 127\.0\.0\.1:1\/nothing\.git/,
    )
  })

  it('gives up on a git server that stops answering, as proctor trouble', async () => {
    const silent = net.createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const { port } = silent.address() as net.AddressInfo
    const started = Date.now()
    try {
      const error = await fetchCommit(
        fetchOptions(
          { url: `git://127.0.0.1:${port}/silent.git`, sha: project.sha },
          { timeoutMs: 1500 },
        ),
      ).catch((err: unknown) => err)

      expect(error).toBeInstanceOf(InfrastructureError)
      expect((error as Error).message).toMatch(/took longer than 2 s \(during git clone\)/)
      expect(Date.now() - started).toBeLessThan(10_000)
    } finally {
      silent.close()
    }
  })

  it('refuses a submodule on another server, naming it and its URL', async () => {
    const work = commitProject({ 'run.sh': 'echo hi\n' })
    writeFileSync(
      path.join(work, '.gitmodules'),
      '[submodule "lib"]\n\tpath = lib\n\turl = https://example.invalid/someone/lib.git\n',
    )
    git(work, 'update-index', '--add', '--cacheinfo', `160000,${'a'.repeat(40)},lib`)
    git(work, 'add', '.gitmodules')
    git(work, 'commit', '--quiet', '--message', 'add a foreign submodule')
    const foreign = publish('foreign-submodule', work, 'main')

    const error = await fetchCommit(fetchOptions(foreign)).catch((err: unknown) => err)

    expect(error).toBeInstanceOf(SubmissionFailure)
    expect(error).toMatchObject({ code: 'build_failed' })
    expect((error as Error).message).toContain(
      'submodule lib points to https://example.invalid/someone/lib.git',
    )
  })

  it('fetches a submodule from the same server', async () => {
    const lib = publish('lib', commitProject({ 'lib.py': 'VALUE = 42\n' }), 'main')
    const work = commitProject({ 'run.sh': 'echo hi\n' })
    writeFileSync(
      path.join(work, '.gitmodules'),
      '[submodule "lib"]\n\tpath = lib\n\turl = ../lib.git\n',
    )
    git(work, 'update-index', '--add', '--cacheinfo', `160000,${lib.sha},lib`)
    git(work, 'add', '.gitmodules')
    git(work, 'commit', '--quiet', '--message', 'add a submodule')
    const withSubmodule = publish('with-submodule', work, 'main')
    const options = fetchOptions(withSubmodule)

    await fetchCommit(options)

    expect(readFileSync(path.join(options.dir, 'lib', 'lib.py'), 'utf8')).toBe('VALUE = 42\n')
  })

  it('keeps credentials out of the checkout', async () => {
    const options = fetchOptions(project)

    await fetchCommit(options)

    expect(readFileSync(path.join(options.dir, '.git', 'config'), 'utf8')).toContain(
      `url = ${project.url}`,
    )
    expect(existsSync(path.join(options.dir, '.git', 'credentials'))).toBe(false)
  })

  it('refuses a folder that is not empty', async () => {
    const options = fetchOptions(project)
    await fetchCommit(options)

    await expect(fetchCommit({ ...options })).rejects.toThrow(/is not empty/)
  })
})
