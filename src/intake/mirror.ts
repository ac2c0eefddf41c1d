import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'

import type { ForgeConfig, ProctorConfig } from '../config/proctor-config.ts'
import { InfrastructureError } from '../domain/errors.ts'
import { GitError, runGit } from './git.ts'

/** How long one fetch of a project may take before the intake job is retried. */
export const FETCH_TIMEOUT_MS = 120_000
/** Local reads (rev-parse, ls-tree, cat-file) are quick; anything slower is a stuck disk. */
const READ_TIMEOUT_MS = 15_000

/**
 * Where a project's mirror lives: `<builder.workDir>/../mirrors/<forge id>/<project path>.git`.
 * With the default `workDir` (`.proctor/work`) that is `.proctor/mirrors/gitlab/alice/
 * flower-classification.git`: beside the build folders, not inside them, so cleaning
 * builds never drops a mirror. The path was checked by `isSafeProjectPath` at the hook.
 */
export function mirrorDir(config: ProctorConfig, forgeId: string, projectPath: string): string {
  return path.resolve(config.builder.workDir, '..', 'mirrors', forgeId, `${projectPath}.git`)
}

/** The configured clone URL with `{path}` filled in. Never a URL from a payload. */
export function cloneUrlFor(forge: ForgeConfig, projectPath: string): string {
  return forge.cloneUrl.replaceAll('{path}', projectPath)
}

const BASIC_AUTH_USER: Readonly<Record<ForgeConfig['kind'], string>> = {
  gitlab: 'oauth2',
  github: 'x-access-token',
  gitea: 'x-access-token',
}

/**
 * Credentials for private projects over HTTP(S): the forge's `apiToken` as a basic-auth
 * header, handed to git through GIT_CONFIG_* variables so it appears in no command line,
 * URL, remote config or error message.
 */
function authEnv(forge: ForgeConfig, url: string): Record<string, string> {
  if (!forge.apiToken || !/^https?:\/\//.test(url)) return {}
  const basic = Buffer.from(`${BASIC_AUTH_USER[forge.kind]}:${forge.apiToken}`).toString('base64')
  return {
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'http.extraHeader',
    GIT_CONFIG_VALUE_0: `Authorization: Basic ${basic}`,
  }
}

export interface TreeEntry {
  mode: string
  type: string
  sha: string
  /** Blob size in bytes; null for trees and submodules. */
  size: number | null
  name: string
}

/**
 * A local bare mirror of one project, fetched from the forge on demand. Reads run
 * concurrently; fetches of one mirror are coalesced (see FetchGate), so a burst of pushes
 * to one project costs one or two fetches, not one each.
 */
export class Mirror {
  readonly dir: string
  readonly #url: string
  readonly #env: Record<string, string>
  readonly #gate: FetchGate

  constructor(config: ProctorConfig, forge: ForgeConfig, projectPath: string) {
    this.dir = mirrorDir(config, forge.id, projectPath)
    this.#url = cloneUrlFor(forge, projectPath)
    this.#env = authEnv(forge, this.#url)
    this.#gate = gateFor(this.dir)
  }

  /**
   * Brings every tag and branch of the project in. A fetch that fails (forge down, project
   * gone, no access) is proctor's trouble: InfrastructureError, so the job is retried.
   */
  async fetch(): Promise<void> {
    await this.#gate.request(async () => {
      await this.#ensure()
      try {
        await runGit(
          ['fetch', '--quiet', '--prune', '--no-write-fetch-head', this.#url, '+refs/tags/*:refs/tags/*', '+refs/heads/*:refs/heads/*'],
          { cwd: this.dir, timeoutMs: FETCH_TIMEOUT_MS, env: this.#env },
        )
      } catch (err) {
        throw new InfrastructureError(`fetching ${this.#url} failed: ${errorText(err)}`, { cause: err })
      }
    })
  }

  /**
   * Asks the forge for one object by sha: the commit of a tag that was moved or deleted
   * after the push. Forges may refuse a sha no ref points to; that returns false.
   */
  async fetchSha(sha: string): Promise<boolean> {
    await this.#ensure()
    try {
      await runGit(['fetch', '--quiet', '--no-write-fetch-head', this.#url, sha], {
        cwd: this.dir,
        timeoutMs: FETCH_TIMEOUT_MS,
        env: this.#env,
      })
      return true
    } catch (err) {
      if (err instanceof GitError) return false
      throw err
    }
  }

  /** The commit `rev` names (a commit, or a tag object peeled), or null if not here. */
  async peel(rev: string): Promise<string | null> {
    return this.#revParse(`${rev}^{commit}`)
  }

  /** What `refs/tags/<tag>` points to (a commit or a tag object), or null. */
  async tagTarget(tag: string): Promise<string | null> {
    return this.#revParse(`refs/tags/${tag}`)
  }

  async #revParse(rev: string): Promise<string | null> {
    if (!existsSync(this.dir)) return null
    try {
      const out = await runGit(['rev-parse', '--verify', '--quiet', '--end-of-options', rev], {
        cwd: this.dir,
        timeoutMs: READ_TIMEOUT_MS,
      })
      return out.toString('utf8').trim() || null
    } catch (err) {
      if (err instanceof GitError && !err.timedOut) return null
      throw new InfrastructureError(`reading ${this.dir} failed: ${errorText(err)}`, { cause: err })
    }
  }

  /** The entries at the root of a commit's tree (not recursive). */
  async listRoot(commit: string): Promise<TreeEntry[]> {
    const out = await this.#read(['ls-tree', '-l', '-z', '--full-tree', commit])
    const entries: TreeEntry[] = []
    for (const record of out.toString('utf8').split('\0')) {
      if (!record) continue
      // "<mode> <type> <sha> <size>\t<name>", size is "-" for trees and submodules.
      const tab = record.indexOf('\t')
      const [mode = '', type = '', sha = '', size = '-'] = record.slice(0, tab).trim().split(/\s+/)
      entries.push({ mode, type, sha, size: size === '-' ? null : Number(size), name: record.slice(tab + 1) })
    }
    return entries
  }

  async readBlob(sha: string, maxBytes: number): Promise<Buffer> {
    return this.#read(['cat-file', 'blob', sha], maxBytes + 1)
  }

  async #read(args: string[], maxBytes?: number): Promise<Buffer> {
    try {
      return await runGit(args, { cwd: this.dir, timeoutMs: READ_TIMEOUT_MS, ...(maxBytes ? { maxBytes } : {}) })
    } catch (err) {
      throw new InfrastructureError(`git ${args[0] ?? ''} in ${this.dir} failed: ${errorText(err)}`, { cause: err })
    }
  }

  async #ensure(): Promise<void> {
    if (existsSync(path.join(this.dir, 'HEAD'))) return
    await mkdir(this.dir, { recursive: true })
    await runGit(['init', '--quiet', '--bare', this.dir], { timeoutMs: READ_TIMEOUT_MS })
    // Old commits of moved or deleted tags must stay readable: no automatic gc in a mirror.
    await runGit(['config', 'gc.auto', '0'], { cwd: this.dir, timeoutMs: READ_TIMEOUT_MS })
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Coalesces fetches of one mirror: while a fetch runs, every new request shares ONE
 * follow-up fetch started after it ends. A caller therefore always gets a fetch that began
 * after its own request (it sees every push made before it asked), and N concurrent callers
 * cost at most two fetches. Also keeps two git processes from fetching into one repository
 * at once (ref lock errors).
 */
class FetchGate {
  #running: Promise<void> | null = null
  #queued: Promise<void> | null = null

  request(fetch: () => Promise<void>): Promise<void> {
    if (this.#queued) return this.#queued
    if (!this.#running) return this.#start(fetch)
    const queued = this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = null
        return this.#start(fetch)
      })
    this.#queued = queued
    return queued
  }

  #start(fetch: () => Promise<void>): Promise<void> {
    const run = fetch().finally(() => {
      if (this.#running === run) this.#running = null
    })
    this.#running = run
    return run
  }
}

// One gate per mirror folder for the process. Gates are tiny; the map grows with projects.
const gates = new Map<string, FetchGate>()

function gateFor(dir: string): FetchGate {
  let gate = gates.get(dir)
  if (!gate) {
    gate = new FetchGate()
    gates.set(dir, gate)
  }
  return gate
}
