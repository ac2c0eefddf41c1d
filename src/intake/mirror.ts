import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { mkdir, rename, rm } from 'node:fs/promises'
import path from 'node:path'

import type { ForgeConfig, ProctorConfig } from '../config/proctor-config.ts'
import { InfrastructureError } from '../domain/errors.ts'
import { CatFileSession } from './cat-file.ts'
import { FetchGate } from './fetch-gate.ts'
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

/**
 * A local bare mirror of one project, fetched from the forge on demand. Reads run
 * concurrently (each through its own `git cat-file` process); fetches of one mirror are coalesced (see FetchGate), so a burst of pushes
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
          [
            'fetch',
            '--quiet',
            '--prune',
            '--no-write-fetch-head',
            this.#url,
            '+refs/tags/*:refs/tags/*',
            '+refs/heads/*:refs/heads/*',
          ],
          { cwd: this.dir, timeoutMs: FETCH_TIMEOUT_MS, env: this.#env },
        )
      } catch (err) {
        throw new InfrastructureError(`fetching ${this.#url} failed: ${errorText(err)}`, {
          cause: err,
        })
      } finally {
        readers.invalidate(this.dir)
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
    } finally {
      readers.invalidate(this.dir)
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

  /**
   * Runs `read` with the mirror's shared `git cat-file` process (see ReaderPool), or returns
   * null when the mirror does not exist yet. Git trouble or a read slower than the read
   * timeout throws InfrastructureError, and the process is replaced.
   */
  async read<T>(read: (reader: CatFileSession) => Promise<T>): Promise<T | null> {
    // A fetch in progress may have written a commit and not yet its tree: wait it out.
    await this.#gate.idle()
    if (!existsSync(path.join(this.dir, 'HEAD'))) return null
    return readers.run(this.dir, read)
  }

  /**
   * Creates the bare repository in a scratch folder and renames it into place, so a reader
   * never sees a half-made repository (`openReader` checks for HEAD).
   */
  async #ensure(): Promise<void> {
    if (existsSync(path.join(this.dir, 'HEAD'))) return
    await mkdir(path.dirname(this.dir), { recursive: true })
    const scratch = `${this.dir}.init-${process.pid}-${randomBytes(4).toString('hex')}`
    try {
      await runGit(['init', '--quiet', '--bare', scratch], { timeoutMs: READ_TIMEOUT_MS })
      // Old commits of moved or deleted tags must stay readable: no automatic gc in a mirror.
      await runGit(['config', 'gc.auto', '0'], { cwd: scratch, timeoutMs: READ_TIMEOUT_MS })
      // Keep what a fetch brings as a pack: a pack appears whole (its index is renamed into
      // place last), where exploded loose objects appear one by one to another process's
      // reader (a commit before its tree).
      await runGit(['config', 'fetch.unpackLimit', '1'], {
        cwd: scratch,
        timeoutMs: READ_TIMEOUT_MS,
      })
      await rename(scratch, this.dir)
    } catch (err) {
      // Another process made it first: theirs is as good as ours.
      if (!existsSync(path.join(this.dir, 'HEAD'))) {
        throw new InfrastructureError(`creating the mirror ${this.dir} failed: ${errorText(err)}`, {
          cause: err,
        })
      }
    } finally {
      await rm(scratch, { recursive: true, force: true })
    }
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
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

/** A cat-file process stays this long after its last read, then exits. */
const READER_IDLE_MS = 30_000

interface PooledReader {
  session: CatFileSession
  /** Reads queue behind each other: one command at a time on the pipe. */
  tail: Promise<unknown>
  idle: NodeJS.Timeout | null
}

/**
 * One long-lived `git cat-file --batch-command` per mirror, shared by every job reading
 * that mirror, so a job whose commit is already mirrored starts no process at all. Replaced
 * after each fetch of the mirror (a running cat-file may not see new objects), after an
 * error, and closed after READER_IDLE_MS without reads.
 */
class ReaderPool {
  readonly #readers = new Map<string, PooledReader>()

  run<T>(dir: string, read: (reader: CatFileSession) => Promise<T>): Promise<T> {
    const pooled = this.#get(dir)
    const result = pooled.tail.then(() => this.#runOne(dir, pooled, read))
    pooled.tail = result.catch(() => undefined)
    return result
  }

  invalidate(dir: string): void {
    const pooled = this.#readers.get(dir)
    if (!pooled) return
    this.#readers.delete(dir)
    // Reads already queued on it finish first; then it exits.
    void pooled.tail.then(() => pooled.session.close())
  }

  #get(dir: string): PooledReader {
    let pooled = this.#readers.get(dir)
    if (!pooled || !pooled.session.usable) {
      pooled = { session: new CatFileSession(dir), tail: Promise.resolve(), idle: null }
      this.#readers.set(dir, pooled)
    }
    if (pooled.idle) clearTimeout(pooled.idle)
    pooled.idle = null
    return pooled
  }

  async #runOne<T>(
    dir: string,
    pooled: PooledReader,
    read: (reader: CatFileSession) => Promise<T>,
  ): Promise<T> {
    const timer = setTimeout(
      () =>
        pooled.session.kill(
          new Error(`git cat-file in ${dir} did not answer within ${READ_TIMEOUT_MS} ms`),
        ),
      READ_TIMEOUT_MS,
    )
    try {
      return await read(pooled.session)
    } catch (err) {
      pooled.session.kill(err instanceof Error ? err : new Error(String(err)))
      if (this.#readers.get(dir) === pooled) this.#readers.delete(dir)
      throw new InfrastructureError(`reading ${dir} failed: ${errorText(err)}`, { cause: err })
    } finally {
      clearTimeout(timer)
      if (this.#readers.get(dir) === pooled) {
        if (pooled.idle) clearTimeout(pooled.idle)
        pooled.idle = setTimeout(() => this.#close(dir, pooled), READER_IDLE_MS)
        pooled.idle.unref()
      }
    }
  }

  #close(dir: string, pooled: PooledReader): void {
    if (this.#readers.get(dir) !== pooled) return
    this.#readers.delete(dir)
    void pooled.tail.then(() => pooled.session.close())
  }
}

const readers = new ReaderPool()
