/**
 * What a forge's hook delivery means to proctor, whichever forge sent it.
 *
 * Glossary:
 * - **delivery**: one POST from a forge. Forges retry and operators press "Resend", so the same
 *   push can arrive several times.
 * - **tag push**: a tag created or moved. The only delivery that can become a submission.
 * - **delivery key**: `forge|projectId|ref|after`. Two deliveries with the same key are the
 *   same push; the second is a duplicate forever.
 * - **checkout sha**: the commit to build. For an annotated tag `after` is the tag object and
 *   the commit is behind it; the intake job peels it with git either way.
 */
export type ForgeEvent = TagPushEvent | IgnoredEvent

export interface Pusher {
  /** The forge's numeric user id, as text: what the participant directory maps. */
  readonly forgeUserId: string
  readonly username: string | null
}

export interface TagPushEvent {
  readonly kind: 'tag_push'
  readonly projectId: string
  /** Namespace and name, `alice/flower-classification`: validated by `isSafeProjectPath`. */
  readonly projectPath: string
  /** `refs/tags/<tag>` */
  readonly ref: string
  readonly tag: string
  readonly after: string
  /** The commit the forge says the tag points to (`after` when it does not say). */
  readonly checkoutSha: string
  readonly pusher: Pusher
  readonly idempotencyKey: string | null
}

export interface IgnoredEvent {
  readonly kind: 'ignored'
  /** What the body says it is: `push`, `tag_deletion`, `ping`, `repository_update`… */
  readonly eventKind: string
  /** Why nothing will happen, in words an operator reads in the event list. */
  readonly reason: string
  readonly projectId?: string | null
  readonly projectPath?: string | null
  readonly ref?: string | null
  readonly after?: string | null
  readonly pusher?: Pusher | null
  readonly idempotencyKey: string | null
}

/** A body the forge could have sent but did not fill in: answered 400 naming the field. */
export interface MalformedDelivery {
  readonly kind: 'malformed'
  readonly field: string
  readonly message: string
}

export type ParseOutcome = ForgeEvent | MalformedDelivery

export const ZERO_SHA = /^0{40}(?:0{24})?$/
const SHA = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/

export function isSha(value: string): boolean {
  return SHA.test(value)
}

/** The all-zeros sha forges send as `after` when a ref is deleted. */
export function isZeroSha(value: unknown): boolean {
  return typeof value === 'string' && ZERO_SHA.test(value)
}

/** The key that makes a tag push a duplicate of an earlier one, permanently. */
export function deliveryKey(forgeId: string, event: TagPushEvent): string {
  return `${forgeId}|${event.projectId}|${event.ref}|${event.after}`
}

const PATH_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/

/**
 * A project path safe to put in a clone URL and a mirror folder: `/`-separated segments of
 * letters, digits, `_`, `.`, `-`, none starting with `.` or `-` and none ending in `.git`
 * or `.`. Forges allow no more than that, and `..` can never get through.
 */
export function isSafeProjectPath(path: string): boolean {
  if (path.length === 0 || path.length > 255) return false
  return path
    .split('/')
    .every(
      (segment) =>
        PATH_SEGMENT.test(segment) && !segment.endsWith('.git') && !segment.endsWith('.'),
    )
}

/**
 * `git check-ref-format` rules for a tag name, so a tag can be passed to git and stored
 * without surprises: no control characters, spaces, `~^:?*[\`, `..` or `@{`, no component
 * starting with `.` or ending with `.lock`, not starting with `-`.
 */
export function isValidTagName(tag: string): boolean {
  if (tag.length === 0 || tag.length > 255) return false
  if (tag.startsWith('-') || tag.endsWith('/') || tag.endsWith('.') || tag === '@') return false
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(tag) || tag.includes('..') || tag.includes('@{')) {
    return false
  }
  return tag
    .split('/')
    .every((part) => part.length > 0 && !part.startsWith('.') && !part.endsWith('.lock'))
}

export const TAG_PREFIX = 'refs/tags/'
export const BRANCH_PREFIX = 'refs/heads/'

/**
 * Classifies a pushed ref the same way for every forge: tag pushes go on, tag deletions,
 * branch pushes and other refs are ignored with a reason.
 */
export function classifyRef(
  ref: string,
  after: unknown,
  deleted: boolean,
): { kind: 'tag'; tag: string } | { kind: 'ignored'; eventKind: string; reason: string } {
  if (ref.startsWith(BRANCH_PREFIX)) {
    return {
      kind: 'ignored',
      eventKind: 'push',
      reason: `branch push (${ref}): only tag pushes are submissions`,
    }
  }
  if (!ref.startsWith(TAG_PREFIX)) {
    return { kind: 'ignored', eventKind: 'push', reason: `push to ${ref}, which is not a tag` }
  }
  if (deleted || isZeroSha(after)) {
    return {
      kind: 'ignored',
      eventKind: 'tag_deletion',
      reason: `tag deletion (${ref}): a deleted tag's submissions are kept`,
    }
  }
  return { kind: 'tag', tag: ref.slice(TAG_PREFIX.length) }
}

/** `message` names the field: `after is required`, `ref must be a string, not a number`. */
export function malformed(field: string, message: string): MalformedDelivery {
  return { kind: 'malformed', field, message }
}
