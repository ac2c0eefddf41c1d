import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'

import type { FastifyInstance } from 'fastify'

import { GITEA_SECRET, GITHUB_SECRET, GITLAB_SECRETS } from './context.ts'

export const HOOK_FIXTURES = path.resolve(import.meta.dirname, '../../fixtures/hooks')

export function fixtureBytes(relative: string): Buffer {
  return readFileSync(path.join(HOOK_FIXTURES, relative))
}

export function fixtureJson(relative: string): Record<string, unknown> {
  return JSON.parse(fixtureBytes(relative).toString('utf8')) as Record<string, unknown>
}

export function hmacHex(secret: string, body: Buffer | string): string {
  return createHmac('sha256', secret).update(body).digest('hex')
}

/** Headers a forge would send with `body`, signed with the test secret (or as told). */
export function forgeHeaders(
  forge: 'gitlab' | 'github' | 'gitea',
  body: Buffer,
  extra: Record<string, string> = {},
): Record<string, string> {
  const base: Record<string, string> = { 'content-type': 'application/json' }
  if (forge === 'gitlab') base['x-gitlab-token'] = GITLAB_SECRETS[0] ?? ''
  if (forge === 'github') {
    base['x-hub-signature-256'] = `sha256=${hmacHex(GITHUB_SECRET, body)}`
    base['x-github-event'] = 'push'
  }
  if (forge === 'gitea') {
    base['x-gitea-signature'] = hmacHex(GITEA_SECRET, body)
    base['x-gitea-event'] = 'push'
  }
  return { ...base, ...extra }
}

export interface HookAnswer {
  status: number
  body: Record<string, unknown>
}

/** Anything that can inject a request: the test app, or one with its own logger. */
export type Injector = Pick<FastifyInstance, 'inject'>

export async function postHook(
  app: Injector,
  url: string,
  body: Buffer | string,
  headers: Record<string, string>,
): Promise<HookAnswer> {
  const res = await app.inject({ method: 'POST', url, payload: body, headers })
  let parsed: Record<string, unknown> = {}
  try {
    parsed = res.json<Record<string, unknown>>()
  } catch {
    parsed = { raw: res.body }
  }
  return { status: res.statusCode, body: parsed }
}

/** Posts a body to a forge's route with valid credentials. */
export async function deliver(
  app: FastifyInstance,
  forge: 'gitlab' | 'github' | 'gitea',
  body: Buffer | string | object,
  extraHeaders: Record<string, string> = {},
): Promise<HookAnswer> {
  const bytes = Buffer.isBuffer(body)
    ? body
    : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
  return postHook(app, `/hooks/${forge}`, bytes, forgeHeaders(forge, bytes, extraHeaders))
}

export interface GitLabTagPush {
  projectId: number | string
  projectPath: string
  ref: string
  before?: string
  after: string
  checkoutSha: string | null
  userId?: number
  username?: string
}

/** A GitLab tag_push body in the shape of tag-push-v1.json, for a real push. */
export function gitlabTagPushBody(push: GitLabTagPush): Record<string, unknown> {
  const base = fixtureJson('gitlab/tag-push-v1.json')
  const name = push.projectPath.split('/').at(-1)
  return {
    ...base,
    before: push.before ?? '0'.repeat(40),
    after: push.after,
    ref: push.ref,
    checkout_sha: push.checkoutSha,
    user_id: push.userId ?? 42,
    user_username: push.username ?? 'alice',
    project_id: push.projectId,
    project: {
      ...(base.project as object),
      id: push.projectId,
      name,
      path_with_namespace: push.projectPath,
    },
  }
}
