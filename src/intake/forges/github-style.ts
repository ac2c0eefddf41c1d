import { z } from 'zod'

import { describeValue } from '../describe-issue.ts'
import {
  classifyRef,
  isSafeProjectPath,
  isValidTagName,
  malformed,
  type ParseOutcome,
} from '../forge-event.ts'
import {
  header,
  idSchema,
  isPlainObject,
  parseFields,
  shaSchema,
  type Delivery,
} from './adapter.ts'
import { ignoredEvent, shortString } from './ignored.ts'

/**
 * GitHub and Gitea/Forgejo send the same `push` shape: `ref`, `before`, `after`, `deleted`,
 * `head_commit`, `repository{id,full_name}`, `pusher`, `sender`. They differ in who the
 * pusher is: GitHub's `pusher` has no id (the account is `sender`), Gitea's has one.
 *
 * Classified by body: a `ref` with an `after` is a push; `ref_type` without `after` is a
 * `create`/`delete` event (ignored: it has no sha, the push event carries the tag); `zen` or
 * `hook_id` without a ref is a test ping; anything else is an event proctor does not use.
 */
const userSchema = z.object({
  id: idSchema,
  login: z.string().max(255).optional(),
  username: z.string().max(255).optional(),
})

const pushSchema = z.object({
  ref: z.string().min(1),
  after: shaSchema,
  deleted: z.boolean().optional(),
  head_commit: z.object({ id: shaSchema }).nullable().optional(),
  repository: z.object({ id: idSchema, full_name: z.string().max(255) }),
})

const ACCOUNT_SCHEMAS = {
  sender: z.object({ sender: userSchema }),
  pusher: z.object({ pusher: userSchema }),
} as const

export interface GitHubStyleOptions {
  /** Where the pushing account's id is: GitHub's `sender`, Gitea's `pusher`. */
  pusherField: 'sender' | 'pusher'
  /** Header naming the event, only to word an ignored event's reason. */
  eventHeader: string
  idempotencyKey: string | null
}

export function parseGitHubStyle(
  body: unknown,
  delivery: Delivery,
  options: GitHubStyleOptions,
): ParseOutcome {
  if (!isPlainObject(body)) {
    return malformed('(body)', `the body must be a JSON object, not ${describeValue(body)}`)
  }
  const headerEvent = shortString(header(delivery.headers, options.eventHeader)) ?? null
  const repository = isPlainObject(body.repository) ? body.repository : {}
  const who = body[options.pusherField]
  const looseAccount = isPlainObject(who) ? who : {}
  const loose = {
    projectId: repository.id,
    projectPath: repository.full_name,
    ref: body.ref,
    after: body.after,
    userId: looseAccount.id,
    username: looseAccount.login ?? looseAccount.username,
    idempotencyKey: options.idempotencyKey,
  }

  if (body.ref === undefined && ('zen' in body || 'hook_id' in body)) {
    return ignoredEvent('ping', 'test delivery (ping): the hook works', loose)
  }
  if ('ref_type' in body && body.after === undefined) {
    const kind =
      headerEvent === 'delete' || headerEvent === 'create' ? headerEvent : 'create_or_delete'
    return ignoredEvent(kind, `${kind} event: tag pushes are read from the push event`, loose)
  }
  if (body.ref === undefined) {
    const kind = headerEvent ?? 'unknown'
    return ignoredEvent(kind, `${kind} event: only tag pushes are submissions`, loose)
  }

  if (typeof body.ref !== 'string' || body.ref === '') {
    return malformed('ref', `ref must be a non-empty string, not ${describeValue(body.ref)}`)
  }
  const refClass = classifyRef(body.ref, body.after, body.deleted === true)
  if (refClass.kind === 'ignored') return ignoredEvent(refClass.eventKind, refClass.reason, loose)

  const parsed = parseFields(pushSchema, body)
  if (!parsed.ok) return parsed.error
  const data = parsed.data
  const pusher = parseFields(ACCOUNT_SCHEMAS[options.pusherField], body)
  if (!pusher.ok) return pusher.error
  const account = 'sender' in pusher.data ? pusher.data.sender : pusher.data.pusher
  if (!isValidTagName(refClass.tag)) {
    return malformed('ref', `ref ${JSON.stringify(data.ref)} does not name a valid git tag`)
  }
  if (!isSafeProjectPath(data.repository.full_name)) {
    return malformed(
      'repository.full_name',
      `repository.full_name ${JSON.stringify(data.repository.full_name)} is not a project path (segments of letters, digits, _ . -)`,
    )
  }

  return {
    kind: 'tag_push',
    projectId: data.repository.id,
    projectPath: data.repository.full_name,
    ref: data.ref,
    tag: refClass.tag,
    after: data.after,
    // head_commit is the commit the tag points to; `after` may be an annotated tag object.
    checkoutSha: data.head_commit?.id ?? data.after,
    pusher: { forgeUserId: account.id, username: account.login ?? account.username ?? null },
    idempotencyKey: options.idempotencyKey,
  }
}
