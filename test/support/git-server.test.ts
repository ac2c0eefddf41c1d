import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

import { afterEach, beforeAll, describe, expect, it } from 'vitest'

import { createProject, type GitProject, ZERO_SHA } from './git-server.ts'
import { assertServicesUp } from './services.ts'

const execFileAsync = promisify(execFile)

/** Runs git in the bare repository the daemon serves: what proctor would fetch. */
async function inBare(project: GitProject, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('git', ['-C', project.bareDir, ...args])
  return stdout.trim()
}

describe('test git server', () => {
  const projects: GitProject[] = []

  /** A project whose path is derived from the test's name, removed after the test. */
  async function newProject(
    name: string,
    files: Parameters<typeof createProject>[1] = { 'crowdai.json': '{"challenge_id": "iris"}\n' },
  ): Promise<GitProject> {
    const project = await createProject(`support-tests/${name}`, files)
    projects.push(project)
    return project
  }

  beforeAll(async () => {
    await assertServicesUp(['git'])
  })

  afterEach(async () => {
    await Promise.all(projects.splice(0).map((project) => project.remove()))
  })

  it('serves a new project over git:// with its first commit on main', async () => {
    const project = await newProject('first-commit', {
      'crowdai.json': '{"challenge_id": "iris"}\n',
      'run.sh': { content: '#!/bin/sh\necho hi\n', executable: true },
      'src/model.py': 'print(1)\n',
    })

    const head = await project.head()
    expect(project.cloneUrl).toMatch(/^git:\/\/127\.0\.0\.1:\d+\/support-tests\/first-commit\.git$/)
    expect(await project.remoteRef('refs/heads/main')).toBe(head)
    expect(await inBare(project, 'ls-tree', '-r', 'main')).toMatch(
      /^100755 blob [0-9a-f]{40}\trun\.sh$/m,
    )
    expect(await inBare(project, 'show', 'main:src/model.py')).toBe('print(1)')
  })

  it('copies a folder, keeping executable bits', async () => {
    const project = await newProject('from-folder', 'examples/participants/iris')

    const tree = await inBare(project, 'ls-tree', 'main')
    expect(tree).toMatch(/^100755 blob [0-9a-f]{40}\trun\.sh$/m)
    expect(tree).toMatch(/^100644 blob [0-9a-f]{40}\tcrowdai\.json$/m)
  })

  it('pushes a lightweight tag whose after is the commit', async () => {
    const project = await newProject('lightweight')

    const push = await project.pushTag('v1')
    expect(push).toEqual({
      ref: 'refs/tags/v1',
      before: ZERO_SHA,
      after: await project.head(),
      commitSha: await project.head(),
      tagObjectSha: undefined,
    })
    expect(await project.remoteRef('refs/tags/v1')).toBe(push.after)
  })

  it('pushes an annotated tag whose after is the tag object', async () => {
    const project = await newProject('annotated')

    const push = await project.pushTag('v1', { annotated: true, message: 'first try' })
    expect(push.after).not.toBe(push.commitSha)
    expect(push.tagObjectSha).toBe(push.after)
    expect(push.commitSha).toBe(await project.head())
    expect(await inBare(project, 'cat-file', '-t', push.after)).toBe('tag')
    expect(await inBare(project, 'rev-parse', `${push.after}^{commit}`)).toBe(push.commitSha)
  })

  it('refuses to push a tag that already exists', async () => {
    const project = await newProject('existing-tag')
    await project.pushTag('v1')

    await expect(project.pushTag('v1')).rejects.toThrow(/git tag .*v1.* failed/)
  })

  it('moves a tag to a new commit', async () => {
    const project = await newProject('move')
    const first = await project.pushTag('v1', { annotated: true })

    const commit = await project.commit(
      { 'model.txt': 'better\n', 'crowdai.json': null },
      'improve',
    )
    const moved = await project.moveTag('v1', { annotated: true })
    expect(moved.before).toBe(first.after)
    expect(moved.commitSha).toBe(commit)
    expect(moved.commitSha).not.toBe(first.commitSha)
    expect(await project.remoteRef('refs/tags/v1')).toBe(moved.after)
    expect(await inBare(project, 'ls-tree', '--name-only', moved.commitSha)).toBe('model.txt')
  })

  it('deletes a tag', async () => {
    const project = await newProject('delete')
    const push = await project.pushTag('v1')

    const deletion = await project.deleteTag('v1')
    expect(deletion).toEqual({ ref: 'refs/tags/v1', before: push.after, after: ZERO_SHA })
    expect(await project.remoteRef('refs/tags/v1')).toBeUndefined()
    await expect(project.deleteTag('v1')).rejects.toThrow(/has no tag v1/)
  })

  it('replaces a project that already exists at the path', async () => {
    const old = await newProject('replaced')
    await old.commit({ 'old.txt': 'old\n' })
    await old.pushTag('v1')

    const fresh = await newProject('replaced')
    expect(await fresh.remoteRef('refs/tags/v1')).toBeUndefined()
    expect(await inBare(fresh, 'rev-list', '--count', 'main')).toBe('1')
  })

  it('refuses a path outside the git root', async () => {
    await expect(createProject('../escape', {})).rejects.toThrow(/must be namespace\/name/)
    await expect(createProject('alice/../../escape', {})).rejects.toThrow(/must be namespace\/name/)
  })
})
