import type { IgnoredEvent, Pusher } from '../forge-event.ts'
import { idSchema } from './adapter.ts'

const MAX_STORED = 255

/** A string worth recording on an ignored event (bounded: ignored bodies are not validated). */
export function shortString(value: unknown): string | null {
  return typeof value === 'string' && value.length <= MAX_STORED ? value : null
}

export function shortId(value: unknown): string | null {
  const parsed = idSchema.safeParse(value)
  return parsed.success ? parsed.data : null
}

/** Builds an ignored event from whatever well-typed fields the body happens to have. */
export function ignoredEvent(
  eventKind: string,
  reason: string,
  fields: {
    projectId?: unknown
    projectPath?: unknown
    ref?: unknown
    after?: unknown
    userId?: unknown
    username?: unknown
    idempotencyKey: string | null
  },
): IgnoredEvent {
  const forgeUserId = shortId(fields.userId)
  const pusher: Pusher | null = forgeUserId
    ? { forgeUserId, username: shortString(fields.username) }
    : null
  return {
    kind: 'ignored',
    eventKind: shortString(eventKind) ?? 'unknown',
    reason,
    projectId: shortId(fields.projectId),
    projectPath: shortString(fields.projectPath),
    ref: shortString(fields.ref),
    after: shortString(fields.after),
    pusher,
    idempotencyKey: fields.idempotencyKey,
  }
}
