import { z } from 'zod'

import type { ForgeConfig } from '../../config/proctor-config.ts'
import { describeValue } from '../describe-issue.ts'
import {
  classifyRef,
  isSafeProjectPath,
  isValidTagName,
  malformed,
  type ParseOutcome,
} from '../forge-event.ts'
import {
  decodeJsonBody,
  header,
  idSchema,
  idempotencyKeyFrom,
  isPlainObject,
  matchesAnySecret,
  parseFields,
  shaSchema,
  type Delivery,
  type ForgeAdapter,
  type Verification,
} from './adapter.ts'
import { ignoredEvent } from './ignored.ts'

/**
 * GitLab: one route takes system hooks and project/group hooks alike. `X-Gitlab-Token` is a
 * shared secret sent verbatim (not an HMAC); it may match any of the forge's `hookSecrets`,
 * so the system hook and each project hook can have their own.
 *
 * Classified by `event_name`, falling back to `object_kind` (system hooks of older GitLab
 * send only `event_name`; project hooks key on `object_kind`), then by the ref's prefix.
 */
const refSchema = z.object({ ref: z.string().min(1) })

const tagPushSchema = z.object({
  ref: z.string().min(1),
  after: shaSchema,
  checkout_sha: shaSchema.nullable().optional(),
  user_id: idSchema,
  user_username: z.string().max(255).nullable().optional(),
  project_id: idSchema,
  project: z.object({ path_with_namespace: z.string().max(255) }).optional(),
  repository: z
    .object({
      homepage: z.string().max(2048).nullable().optional(),
      git_http_url: z.string().max(2048).nullable().optional(),
      url: z.string().max(2048).nullable().optional(),
    })
    .optional(),
})

type TagPushBody = z.output<typeof tagPushSchema>

export const gitlabAdapter: ForgeAdapter = {
  kind: 'gitlab',

  verify(delivery: Delivery, secrets: readonly string[]): Verification {
    const token = header(delivery.headers, 'x-gitlab-token')
    if (token === undefined || token === '') {
      return { ok: false, message: 'the X-Gitlab-Token header is missing; set the hook secret' }
    }
    return matchesAnySecret(token, secrets)
      ? { ok: true }
      : {
          ok: false,
          message: 'the X-Gitlab-Token header does not match any hook secret of this forge',
        }
  },

  decode(delivery: Delivery): unknown {
    return decodeJsonBody(delivery, false)
  },

  parse(body: unknown, delivery: Delivery, forge: ForgeConfig): ParseOutcome {
    // GitLab sends the same Idempotency-Key on retries and "Resend". X-Gitlab-Event-UUID is
    // NOT used: hooks triggered by one push may share it.
    const idempotencyKey = idempotencyKeyFrom(delivery.headers, ['idempotency-key'])
    if (!isPlainObject(body)) {
      return malformed('(body)', `the body must be a JSON object, not ${describeValue(body)}`)
    }

    for (const field of ['event_name', 'object_kind'] as const) {
      const value = body[field]
      if (value !== undefined && value !== null && typeof value !== 'string') {
        return malformed(field, `${field} must be a string, not ${describeValue(value)}`)
      }
    }
    const kind = (body.event_name as string | undefined) ?? (body.object_kind as string | undefined)
    if (!kind) {
      return malformed('event_name', 'event_name (or object_kind) is required in a GitLab hook')
    }

    const loose = {
      projectId: body.project_id,
      projectPath: isPlainObject(body.project) ? body.project.path_with_namespace : undefined,
      ref: body.ref,
      after: body.after,
      userId: body.user_id,
      username: body.user_username,
      idempotencyKey,
    }
    if (kind !== 'push' && kind !== 'tag_push') {
      return ignoredEvent(kind, `${kind} event: only tag pushes are submissions`, loose)
    }

    const refOnly = parseFields(refSchema, body)
    if (!refOnly.ok) return refOnly.error
    const ref = refOnly.data.ref
    const deleted = body.checkout_sha === null
    const refClass = classifyRef(ref, body.after, deleted)
    if (refClass.kind === 'ignored') return ignoredEvent(refClass.eventKind, refClass.reason, loose)

    const parsed = parseFields(tagPushSchema, body)
    if (!parsed.ok) return parsed.error
    const data = parsed.data
    if (!isValidTagName(refClass.tag)) {
      return malformed('ref', `ref ${JSON.stringify(ref)} does not name a valid git tag`)
    }

    const projectPath = data.project?.path_with_namespace ?? legacyProjectPath(data, forge)
    if (projectPath === null) {
      return malformed(
        'project.path_with_namespace',
        'project.path_with_namespace is required (the body has neither a project object nor a repository URL to read the path from)',
      )
    }
    if (!isSafeProjectPath(projectPath)) {
      return malformed(
        'project.path_with_namespace',
        `project.path_with_namespace ${JSON.stringify(projectPath)} is not a project path (segments of letters, digits, _ . -)`,
      )
    }

    return {
      kind: 'tag_push',
      projectId: data.project_id,
      projectPath,
      ref,
      tag: refClass.tag,
      after: data.after,
      checkoutSha: data.checkout_sha ?? data.after,
      pusher: { forgeUserId: data.user_id, username: data.user_username ?? null },
      idempotencyKey,
    }
  },
}

/**
 * Old GitLab deliveries (before `project` existed) carry only the deprecated `repository`.
 * The project's path is read from its web address (`homepage`), else its HTTP or SSH clone
 * URL. Only the path is taken: proctor clones from the forge's configured `cloneUrl`, never
 * from a host named in a payload.
 */
function legacyProjectPath(data: TagPushBody, forge: ForgeConfig): string | null {
  const repository = data.repository
  if (!repository) return null
  const basePath = new URL(forge.baseUrl).pathname.replace(/\/+$/, '')

  for (const candidate of [repository.homepage, repository.git_http_url]) {
    if (!candidate) continue
    let pathname: string
    try {
      pathname = new URL(candidate).pathname
    } catch {
      continue
    }
    if (basePath && pathname.startsWith(`${basePath}/`)) pathname = pathname.slice(basePath.length)
    const path = pathname.replace(/^\/+/, '').replace(/\.git$/, '')
    if (path) return path
  }

  const ssh = repository.url ? /^[^@\s]+@[^:\s]+:(.+?)(?:\.git)?$/.exec(repository.url) : null
  return ssh?.[1] ?? null
}
