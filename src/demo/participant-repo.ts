import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, {
    cwd,
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 'Alice',
      GIT_AUTHOR_EMAIL: 'alice@example.test',
      GIT_COMMITTER_NAME: 'Alice',
      GIT_COMMITTER_EMAIL: 'alice@example.test',
    },
  })
  return stdout.trim()
}

export interface PushedTag {
  tag: string
  /** The tag ref's value: the tag object for annotated tags. */
  after: string
  /** The commit the tag points at. */
  commit: string
}

/**
 * Plays a participant: makes (or reuses) a bare repository served by the loopback git
 * server, commits a folder's files to it, and pushes a tag over git://, as a real push.
 */
export async function pushParticipantTag(options: {
  gitRoot: string
  gitUrl: string
  projectPath: string
  sourceDir: string
  tag: string
}): Promise<PushedTag> {
  const bare = path.join(options.gitRoot, `${options.projectPath}.git`)
  if (!existsSync(bare)) {
    mkdirSync(bare, { recursive: true })
    await git(bare, 'init', '--bare', '--quiet', '--initial-branch=main')
  }

  const work = mkdtempSync(path.join(tmpdir(), 'proctor-participant-'))
  try {
    const remote = `${options.gitUrl}/${options.projectPath}.git`
    await git(work, 'init', '--quiet', '--initial-branch=main')
    await git(work, 'remote', 'add', 'origin', remote)
    const hasMain = (await git(work, 'ls-remote', '--heads', 'origin', 'main')) !== ''
    if (hasMain) {
      await git(work, 'fetch', '--quiet', 'origin', 'main')
      await git(work, 'reset', '--quiet', '--soft', 'FETCH_HEAD')
    }
    cpSync(options.sourceDir, work, { recursive: true })
    await git(work, 'add', '--all')
    await git(work, 'commit', '--quiet', '--allow-empty', '-m', `Submission ${options.tag}`)
    await git(work, 'tag', '-a', options.tag, '-m', `Submitting ${options.tag}`)
    await git(work, 'push', '--quiet', 'origin', 'main', `refs/tags/${options.tag}`)
    return {
      tag: options.tag,
      after: await git(work, 'rev-parse', `refs/tags/${options.tag}`),
      commit: await git(work, 'rev-parse', `refs/tags/${options.tag}^{commit}`),
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/** A GitLab System Hook body for a tag push, shaped like GitLab's own (docs/forges.md). */
export function gitlabTagPushBody(options: {
  baseUrl: string
  projectId: number
  projectPath: string
  pushed: PushedTag
  user: { id: number; username: string; name: string }
}) {
  const name = options.projectPath.split('/').at(-1) ?? options.projectPath
  const namespace = options.projectPath.split('/').slice(0, -1).join('/')
  const web = `${options.baseUrl}/${options.projectPath}`
  return {
    object_kind: 'tag_push',
    event_name: 'tag_push',
    before: '0'.repeat(40),
    after: options.pushed.after,
    ref: `refs/tags/${options.pushed.tag}`,
    checkout_sha: options.pushed.commit,
    message: `Submitting ${options.pushed.tag}`,
    user_id: options.user.id,
    user_name: options.user.name,
    user_username: options.user.username,
    user_email: '',
    user_avatar: null,
    project_id: options.projectId,
    project: {
      id: options.projectId,
      name,
      description: '',
      web_url: web,
      avatar_url: null,
      git_ssh_url: `git@${new URL(options.baseUrl).host}:${options.projectPath}.git`,
      git_http_url: `${web}.git`,
      namespace,
      visibility_level: 0,
      path_with_namespace: options.projectPath,
      default_branch: 'main',
      ci_config_path: null,
    },
    commits: [],
    total_commits_count: 0,
    push_options: {},
  }
}
