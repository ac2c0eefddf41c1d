import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import Docker from 'dockerode'
import { pino } from 'pino'

import type { BuildRequest } from '../../src/build/builder.ts'

export const ROOT = path.resolve(import.meta.dirname, '../..')
export const REPO2DOCKER = path.join(ROOT, '.venv/bin/repo2docker')
export const REGISTRY = '127.0.0.1:5000'
export const GIT_ROOT = path.join(ROOT, '.proctor/git')
export const GIT_URL = 'git://127.0.0.1:9418'

export const docker = new Docker({ version: 'v1.41' })
export const silentLogger = pino({ level: 'silent' })

/** A name no other test run uses: `<prefix>-<pid>-<random>`. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${process.pid}-${randomBytes(4).toString('hex')}`
}

/** A private copy of a fixture repository (builders may not write into the source tree). */
export function copyFixture(name: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `proctor-${name}-`))
  cpSync(path.join(ROOT, 'test/fixtures/repos', name), dir, { recursive: true })
  return dir
}

/** A throwaway folder holding the given files. */
export function makeRepo(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'proctor-repo-'))
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
    writeFileSync(path.join(dir, name), content)
  }
  return dir
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
}

/** Collects the build log a builder streams. */
export function captureLog(): { onLog: BuildRequest['onLog']; text: () => string } {
  const chunks: string[] = []
  return { onLog: (text) => chunks.push(text), text: () => chunks.join('') }
}

/** Removes images by name or id, ignoring those already gone. */
export async function removeImages(names: Iterable<string>): Promise<void> {
  for (const name of names) {
    await docker
      .getImage(name)
      .remove({ force: true })
      .catch(() => undefined)
  }
}

/** Resolves once `check` holds, polling until `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return check()
}

export async function containerExists(id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).inspect()
    return true
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false
    throw err
  }
}

/** The build containers a classic build announced (` ---> Running in <id>`). */
export function runningIds(log: string): string[] {
  return [...log.matchAll(/---> Running in ([0-9a-f]{12})/g)].map((m) => m[1] ?? '')
}

/** Runs git with a fixed identity, so commits need no global configuration. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Test Participant',
      GIT_AUTHOR_EMAIL: 'participant@example.invalid',
      GIT_COMMITTER_NAME: 'Test Participant',
      GIT_COMMITTER_EMAIL: 'participant@example.invalid',
      GIT_TERMINAL_PROMPT: '0',
    },
  }).trim()
}

/**
 * Removes the untagged step images a failed build left in the build cache (` ---> <id>`
 * lines). Tagged images (the base image) are never touched.
 */
export async function removeStepImages(log: string): Promise<void> {
  const ids = [...log.matchAll(/^ ---> ([0-9a-f]{12})$/gm)].map((m) => m[1] ?? '')
  for (const id of ids.reverse()) {
    const info = await docker
      .getImage(id)
      .inspect()
      .catch(() => undefined)
    const tags = (info?.RepoTags ?? []).filter((tag) => tag !== '<none>:<none>')
    if (!info || tags.length > 0) continue
    await docker
      .getImage(id)
      .remove()
      .catch(() => undefined)
  }
}
