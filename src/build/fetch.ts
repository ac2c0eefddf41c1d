import { mkdir, readdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type { Logger } from 'pino'

import { InfrastructureError, ProctorError, SubmissionFailure } from '../domain/errors.ts'
import { isSameServer, parseCloneUrl, redact, type CloneSource } from './clone-url.ts'
import { measureBytes, formatMb } from './measure.ts'
import { baseEnv, runProcess, type RunProcessResult } from './run-process.ts'

export interface FetchCommitOptions {
  /** Where the project is cloned from; credentials in it never reach disk or logs. */
  cloneUrl: string
  commitSha: string
  /** An empty or missing folder; it holds the checkout (with `.git`) afterwards. */
  dir: string
  timeoutMs: number
  /** Largest checkout accepted, history included. */
  maxBytes: number
  signal?: AbortSignal
  /** Extra environment for git (GIT_SSH_COMMAND, a proxy…). */
  env?: Record<string, string>
  logger?: Logger
}

/** How often a running git command's folder is measured against `maxBytes`. */
const SIZE_POLL_MS = 1000
const MAX_SUBMODULE_DEPTH = 5

/**
 * Clones a project on the host and checks out one commit, detached. Submodules are fetched
 * only from the project's own server. The checkout is later the build context, so nothing
 * secret is written into it.
 */
export async function fetchCommit(options: FetchCommitOptions): Promise<{ bytes: number }> {
  const started = Date.now()
  const sha = options.commitSha.toLowerCase()
  if (!/^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(sha)) {
    throw new ProctorError(
      'invalid_commit',
      `fetchCommit: ${JSON.stringify(options.commitSha)} is not a full commit id`,
    )
  }
  const source = parseCloneUrl(options.cloneUrl)
  const dir = path.resolve(options.dir)
  await prepareDir(dir)
  const git = new GitRunner(source, { ...options, dir }, started + options.timeoutMs)

  await git.run('clone', ['clone', '--no-checkout', '--quiet', '--', source.url, dir], {
    cwd: os.tmpdir(),
  })

  if (!(await git.hasCommit(sha))) {
    // A clone only brings what the refs reach: a moved tag's old commit may still be
    // fetchable by id from servers that allow it.
    await git.fetchById(sha)
    if (!(await git.hasCommit(sha))) throw commitMissing(sha, source)
  }

  await git.run('checkout', ['checkout', '--detach', '--quiet', sha])
  await fetchSubmodules(git, source, dir, 0)

  const bytes = await measureBytes(dir)
  if (bytes > options.maxBytes) throw tooLarge(bytes, options.maxBytes, source, sha)
  options.logger?.info(
    { repository: source.display, commit: sha, bytes, durationMs: Date.now() - started },
    'fetched commit',
  )
  return { bytes }
}

async function fetchSubmodules(git: GitRunner, source: CloneSource, dir: string, depth: number) {
  const urls = await git.readGitmodules(dir, 'url')
  if (urls.size === 0) return
  if (depth >= MAX_SUBMODULE_DEPTH) {
    throw new SubmissionFailure(
      'build_failed',
      `submodules are nested more than ${MAX_SUBMODULE_DEPTH} deep in ${source.project}; flatten them and push a new tag`,
    )
  }
  for (const [name, url] of urls) {
    if (!isSameServer(source, url)) {
      throw new SubmissionFailure(
        'build_failed',
        `submodule ${name} points to ${redact(url)}, which is not on ${source.server || "the project's server"}: proctor fetches submodules only from the project's own server; use a relative URL such as ../${name}.git and push a new tag`,
      )
    }
  }

  await git.run('submodule update', ['submodule', 'update', '--init', '--quiet'], { cwd: dir })

  const paths = await git.readGitmodules(dir, 'path')
  for (const sub of paths.values()) {
    await fetchSubmodules(git, source, path.join(dir, sub), depth + 1)
  }
}

/** Runs git with one shared deadline, no prompts, no credential helpers. */
class GitRunner {
  readonly #source: CloneSource
  readonly #options: FetchCommitOptions
  readonly #deadline: number
  readonly #env: Record<string, string>

  constructor(source: CloneSource, options: FetchCommitOptions, deadline: number) {
    this.#source = source
    this.#options = options
    this.#deadline = deadline
    this.#env = gitEnv(source, options.env ?? {})
  }

  async run(what: string, args: string[], opts: { cwd?: string } = {}): Promise<RunProcessResult> {
    const result = await this.#exec(what, args, opts.cwd ?? this.#options.dir)
    if (result.code !== 0) throw this.#failure(what, result)
    return result
  }

  async hasCommit(sha: string): Promise<boolean> {
    const result = await this.#exec(
      'cat-file',
      ['cat-file', '-e', `${sha}^{commit}`],
      this.#options.dir,
    )
    return result.code === 0
  }

  async fetchById(sha: string): Promise<void> {
    const result = await this.#exec(
      'fetch',
      ['fetch', '--quiet', '--no-tags', 'origin', sha],
      this.#options.dir,
    )
    if (result.code === 0) return
    if (isUnknownObject(result.stderr)) throw commitMissing(sha, this.#source)
    throw this.#failure('fetch', result)
  }

  /** `submodule.<name>.<key>` values from a checkout's `.gitmodules`, by submodule name. */
  async readGitmodules(dir: string, key: 'url' | 'path'): Promise<Map<string, string>> {
    const found = new Map<string, string>()
    const result = await this.#exec(
      'read .gitmodules',
      ['config', '--file', '.gitmodules', '--get-regexp', `^submodule\\..*\\.${key}$`],
      dir,
    )
    // Exit 1 means no match, or no .gitmodules at all.
    if (result.code === 1) return found
    if (result.code !== 0) throw this.#failure('read .gitmodules', result)
    for (const line of result.stdout.split('\n')) {
      const match = /^submodule\.(.+)\.(?:url|path) (.*)$/.exec(line)
      if (match?.[1] && match[2] !== undefined) found.set(match[1], match[2])
    }
    return found
  }

  async #exec(what: string, args: string[], cwd: string): Promise<RunProcessResult> {
    const remaining = this.#deadline - Date.now()
    if (remaining <= 0) throw this.#timeout(what)
    const size = new AbortController()
    const signals = [size.signal, ...(this.#options.signal ? [this.#options.signal] : [])]
    const watcher = watchSize(this.#options.dir, this.#options.maxBytes, size)
    try {
      const result = await runProcess('git', [...GIT_CONFIG_FLAGS, ...args], {
        cwd,
        env: this.#env,
        timeoutMs: remaining,
        signal: AbortSignal.any(signals),
      })
      if (result.timedOut) throw this.#timeout(what)
      if (result.aborted && size.signal.aborted) {
        throw tooLarge(
          size.signal.reason as number,
          this.#options.maxBytes,
          this.#source,
          this.#options.commitSha,
        )
      }
      if (result.aborted) throw this.#options.signal?.reason
      return result
    } catch (err) {
      if (err instanceof ProctorError || this.#options.signal?.aborted) throw err
      throw new InfrastructureError(`cannot run git (${what}): ${String(err)}`, { cause: err })
    } finally {
      watcher.stop()
    }
  }

  #timeout(what: string): InfrastructureError {
    const seconds = Math.round(this.#options.timeoutMs / 1000)
    return new InfrastructureError(
      `fetching ${this.#source.display} took longer than ${seconds} s (during git ${what}); is the git server slow or unreachable?`,
    )
  }

  #failure(what: string, result: RunProcessResult): ProctorError {
    const stderr = result.stderr.trim().split('\n').slice(-5).join('\n')
    const submodule = /[Ss]ubmodule (?:path )?'([^']+)'/.exec(stderr)?.[1]
    if (what === 'submodule update' && submodule && isUnknownObject(stderr)) {
      return new SubmissionFailure(
        'build_failed',
        `submodule ${submodule} of ${this.#source.project} points to a commit its repository does not have: push that commit to the submodule's repository and push a new tag\n${stderr}`,
      )
    }
    if (isUnreachable(stderr)) {
      return new InfrastructureError(
        `cannot reach the git server for ${this.#source.display} (git ${what}): ${stderr}`,
      )
    }
    return new InfrastructureError(
      `git ${what} failed for ${this.#source.display} (exit ${result.code ?? result.signal}): ${stderr}`,
    )
  }
}

/**
 * Settings for every git call. The repository cannot override these: a global
 * `submodule.recurse` would otherwise fetch submodules before their URLs are checked.
 */
const GIT_CONFIG_FLAGS = [
  '-c',
  'credential.helper=',
  '-c',
  'core.askPass=',
  '-c',
  'submodule.recurse=false',
  '-c',
  'fetch.recurseSubmodules=false',
  '-c',
  'advice.detachedHead=false',
  '-c',
  'protocol.ext.allow=never',
]

function gitEnv(source: CloneSource, extra: Record<string, string>): Record<string, string> {
  const env = baseEnv({
    HOME: process.env.HOME,
    GIT_TERMINAL_PROMPT: '0',
    // Only the project's own transport: a submodule cannot switch to file:// or ext::.
    GIT_ALLOW_PROTOCOL: source.scheme,
    ...extra,
  })
  if (source.authorization) {
    // Passed through the environment so it is never written to .git/config.
    const index = Number(env.GIT_CONFIG_COUNT ?? '0')
    env.GIT_CONFIG_COUNT = String(index + 1)
    env[`GIT_CONFIG_KEY_${index}`] = 'http.extraHeader'
    env[`GIT_CONFIG_VALUE_${index}`] = `Authorization: ${source.authorization}`
  }
  return env
}

async function prepareDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  const entries = await readdir(dir)
  if (entries.length > 0)
    throw new ProctorError('fetch_dir_not_empty', `fetchCommit: ${dir} is not empty`)
}

/** Measures `dir` every second while git runs; aborts with the size once it is over. */
function watchSize(dir: string, maxBytes: number, controller: AbortController) {
  let running = false
  const timer = setInterval(function pollSize() {
    if (running) return
    running = true
    measureBytes(dir)
      .then((bytes) => {
        if (bytes > maxBytes) controller.abort(bytes)
      })
      // Files vanish while git writes; the next poll measures again.
      .catch(() => undefined)
      .finally(() => (running = false))
  }, SIZE_POLL_MS)
  return { stop: () => clearInterval(timer) }
}

function commitMissing(sha: string, source: CloneSource): SubmissionFailure {
  return new SubmissionFailure(
    'commit_missing',
    `commit ${sha} is not in ${source.project}: the tag was moved or the history rewritten; push the tag again`,
  )
}

function tooLarge(
  bytes: number,
  maxBytes: number,
  source: CloneSource,
  sha: string,
): SubmissionFailure {
  return new SubmissionFailure(
    'build_failed',
    `${source.project} at ${sha.slice(0, 12)} is ${formatMb(bytes)} with its history, over the ${formatMb(maxBytes)} limit: remove large files from the repository's history (or keep them outside it) and push a new tag`,
  )
}

function isUnknownObject(stderr: string): boolean {
  return /not our ref|couldn't find remote ref|no such remote ref|unadvertised object|not a valid object|did not contain|reference is not a tree|unable to read tree/i.test(
    stderr,
  )
}

function isUnreachable(stderr: string): boolean {
  return /unable to connect|connection refused|could not resolve host|connection timed out|network is unreachable|early EOF|the remote end hung up/i.test(
    stderr,
  )
}
