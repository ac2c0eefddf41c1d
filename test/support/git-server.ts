import { execFile } from 'node:child_process'
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

import { TEST_ENV } from './env.ts'

/**
 * Real git projects for integration tests, served by the git daemon of scripts/services.sh
 * (`git://127.0.0.1:9418/<path>.git`, pushes allowed). A test plays the participant: it
 * commits in a working clone and pushes tags over git://, exactly as a participant would push
 * to GitLab; the values a push returns are the ones GitLab puts in its tag push hook.
 *
 *   const project = await createProject('alice/iris', 'examples/participants/iris')
 *   const push = await project.pushTag('v1', { annotated: true })
 *   // push.after: the tag object (GitLab's `after`); push.commitSha: its `checkout_sha`
 */

/** What a ref held before it existed, or after it was deleted (GitLab's `before`/`after`). */
export const ZERO_SHA = '0'.repeat(40)

/** A file's text, or a file's text and whether it is executable (committed as 100755). */
export type FileContent = string | { readonly content: string; readonly executable?: boolean }

/** A folder to copy (relative to the repository root, or absolute) or files by path. */
export type ProjectFiles = string | Readonly<Record<string, FileContent>>

export interface GitIdentity {
  readonly name: string
  readonly email: string
}

export interface ProjectOptions {
  /** Author and committer of every commit and tag; default `<namespace> <namespace>@example.test`. */
  readonly author?: GitIdentity
}

export interface TagOptions {
  /** An annotated tag (a tag object) instead of a lightweight one. Default false. */
  readonly annotated?: boolean
  readonly message?: string
  /** The commit to tag; default the working clone's HEAD. */
  readonly commit?: string
}

/** One ref update as the forge reports it. */
export interface TagPush {
  readonly ref: string
  /** The ref's value before the push, ZERO_SHA when the tag is new. */
  readonly before: string
  /** The ref's value after: the tag object of an annotated tag, else the commit. */
  readonly after: string
  /** The commit the tag points to (GitLab's `checkout_sha`). */
  readonly commitSha: string
  /** The tag object's sha for an annotated tag, undefined for a lightweight one. */
  readonly tagObjectSha: string | undefined
}

export interface TagDeletion {
  readonly ref: string
  readonly before: string
  readonly after: typeof ZERO_SHA
}

const execFileAsync = promisify(execFile)
const DEFAULT_BRANCH = 'main'

/**
 * Creates the bare repository `<gitRoot>/<projectPath>.git` with one commit of `files` on
 * `main`, pushed over git://. A project already at that path is replaced, so a test starts
 * from a known history: give each test its own path.
 */
export async function createProject(
  projectPath: string,
  files: ProjectFiles,
  options: ProjectOptions = {},
): Promise<GitProject> {
  if (
    !/^[a-z0-9][a-z0-9_.-]*(\/[a-z0-9][a-z0-9_.-]*)+$/i.test(projectPath) ||
    projectPath.includes('..')
  ) {
    throw new Error(`project path ${projectPath} must be namespace/name, like alice/iris`)
  }
  const bareDir = path.join(TEST_ENV.gitRoot, `${projectPath}.git`)
  const namespace = projectPath.split('/')[0] ?? 'participant'
  const author: GitIdentity = options.author ?? {
    name: namespace,
    email: `${namespace}@example.test`,
  }

  await rm(bareDir, { recursive: true, force: true })
  await mkdir(path.dirname(bareDir), { recursive: true })
  await git(
    TEST_ENV.gitRoot,
    author,
    'init',
    '--quiet',
    '--bare',
    `--initial-branch=${DEFAULT_BRANCH}`,
    bareDir,
  )
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'proctor-git-'))
  await git(workDir, author, 'init', '--quiet', `--initial-branch=${DEFAULT_BRANCH}`)

  const project = new GitProject(projectPath, bareDir, workDir, author)
  await writeFiles(workDir, files)
  await project.commit({}, 'initial commit')
  return project
}

/** A project on the git server and a working clone to change it from. */
export class GitProject {
  readonly path: string
  /** The bare repository the git daemon serves. */
  readonly bareDir: string
  /** The local working clone commits are made in. */
  readonly workDir: string
  /** `git://127.0.0.1:<port>/<path>.git`: what a forge's configured clone URL resolves to. */
  readonly cloneUrl: string
  readonly #author: GitIdentity

  constructor(projectPath: string, bareDir: string, workDir: string, author: GitIdentity) {
    this.path = projectPath
    this.bareDir = bareDir
    this.workDir = workDir
    this.cloneUrl = `git://127.0.0.1:${TEST_ENV.gitPort}/${projectPath}.git`
    this.#author = author
  }

  /**
   * Writes `files` (a `null` content deletes the file), commits everything in the working
   * clone and pushes `main`. Returns the new commit's sha.
   */
  async commit(
    files: ProjectFiles | Readonly<Record<string, FileContent | null>>,
    message = 'update',
  ): Promise<string> {
    await writeFiles(this.workDir, files)
    await this.#git('add', '--all')
    await this.#git('commit', '--quiet', '--allow-empty', '--message', message)
    await this.#git('push', '--quiet', this.cloneUrl, `${DEFAULT_BRANCH}:${DEFAULT_BRANCH}`)
    return this.head()
  }

  /** The working clone's current commit. */
  async head(): Promise<string> {
    return this.#git('rev-parse', 'HEAD')
  }

  /** Creates `tag` in the working clone and pushes it alone. Fails if it exists on the server. */
  async pushTag(tag: string, options: TagOptions = {}): Promise<TagPush> {
    return this.#tagAndPush(tag, options, false)
  }

  /** Points `tag` at another commit (default HEAD) and force-pushes it. */
  async moveTag(tag: string, options: TagOptions = {}): Promise<TagPush> {
    return this.#tagAndPush(tag, options, true)
  }

  /** Deletes `tag` on the server (and in the working clone). */
  async deleteTag(tag: string): Promise<TagDeletion> {
    const ref = `refs/tags/${tag}`
    const before = await this.remoteRef(ref)
    if (before === undefined) throw new Error(`${this.cloneUrl} has no tag ${tag} to delete`)

    await this.#git('push', '--quiet', this.cloneUrl, `:${ref}`)
    await this.#git('tag', '--delete', tag)
    return { ref, before, after: ZERO_SHA }
  }

  /** What `ref` holds on the server, read over git://; undefined when it does not exist. */
  async remoteRef(ref: string): Promise<string | undefined> {
    const out = await this.#git('ls-remote', this.cloneUrl, ref)
    const line = out.split('\n').find((l) => l.endsWith(`\t${ref}`))
    return line?.split('\t')[0]
  }

  /** Deletes the bare repository and the working clone. */
  async remove(): Promise<void> {
    await rm(this.bareDir, { recursive: true, force: true })
    await rm(this.workDir, { recursive: true, force: true })
  }

  async #tagAndPush(tag: string, options: TagOptions, force: boolean): Promise<TagPush> {
    const ref = `refs/tags/${tag}`
    const before = (await this.remoteRef(ref)) ?? ZERO_SHA
    const commit = options.commit ?? (await this.head())

    const tagArgs = options.annotated
      ? ['--annotate', '--message', options.message ?? `submission ${tag}`]
      : []
    await this.#git('tag', ...(force ? ['--force'] : []), ...tagArgs, tag, commit)
    await this.#git('push', '--quiet', this.cloneUrl, `${force ? '+' : ''}${ref}:${ref}`)

    const after = await this.#git('rev-parse', ref)
    const commitSha = await this.#git('rev-parse', `${ref}^{commit}`)
    return { ref, before, after, commitSha, tagObjectSha: options.annotated ? after : undefined }
  }

  #git(...args: string[]): Promise<string> {
    return git(this.workDir, this.#author, ...args)
  }
}

async function writeFiles(
  dir: string,
  files: ProjectFiles | Readonly<Record<string, FileContent | null>>,
): Promise<void> {
  if (typeof files === 'string') {
    const source = path.resolve(TEST_ENV.repoRoot, files)
    // fs.cp keeps file modes, so an executable run.sh stays executable in the commit.
    await cp(source, dir, { recursive: true, filter: (from) => path.basename(from) !== '.git' })
    return
  }
  for (const [name, content] of Object.entries(files)) {
    const file = path.join(dir, name)
    if (!file.startsWith(dir + path.sep)) throw new Error(`file ${name} is outside the project`)
    if (content === null) {
      await rm(file, { force: true })
      continue
    }
    const { content: text, executable = false } =
      typeof content === 'string' ? { content } : content
    await mkdir(path.dirname(file), { recursive: true })
    await writeFile(file, text)
    await chmod(file, executable ? 0o755 : 0o644)
  }
}

/**
 * Runs git with no user or system configuration (a developer's signing or hooks settings must
 * not change what a test sees) and a fixed identity. Returns stdout, trimmed.
 */
async function git(cwd: string, author: GitIdentity, ...args: string[]): Promise<string> {
  const env = {
    ...process.env,
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: author.name,
    GIT_AUTHOR_EMAIL: author.email,
    GIT_COMMITTER_NAME: author.name,
    GIT_COMMITTER_EMAIL: author.email,
  }
  try {
    const { stdout } = await execFileAsync('git', args, { cwd, env, maxBuffer: 16 * 1024 * 1024 })
    return stdout.trim()
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim()
    throw new Error(`git ${args.join(' ')} failed in ${cwd}: ${stderr || String(err)}`, {
      cause: err,
    })
  }
}
