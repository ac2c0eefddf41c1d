import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'

import { z } from 'zod'

import type { ForgeConfig } from '../../config/proctor-config.ts'
import { describeIssue } from '../describe-issue.ts'
import { malformed, type MalformedDelivery, type ParseOutcome } from '../forge-event.ts'

/** One delivery as the route hands it to an adapter: headers and the exact bytes sent. */
export interface Delivery {
  readonly headers: IncomingHttpHeaders
  readonly rawBody: Buffer
}

export type Verification = { ok: true } | { ok: false; message: string }

/**
 * What each forge kind supplies: how a delivery proves it comes from the forge, how its bytes
 * become a value, and how that value maps to a ForgeEvent. Classification reads the body,
 * never a header alone: headers only help name an ignored event.
 */
export interface ForgeAdapter {
  readonly kind: ForgeConfig['kind']
  /** Checks the delivery against every configured secret. MUST run before anything else. */
  verify(delivery: Delivery, secrets: readonly string[]): Verification
  /** The body's value; throws BodyError when it is not JSON (or a form with a JSON payload). */
  decode(delivery: Delivery): unknown
  parse(body: unknown, delivery: Delivery, forge: ForgeConfig): ParseOutcome
}

/** The body is not what the forge sends: answered 400 with the message. */
export class BodyError extends Error {}

// Comparing fixed-length HMACs of both sides under a per-process key keeps the comparison
// constant-time even though tokens differ in length, and reveals nothing about the secret.
const COMPARE_KEY = randomBytes(32)

function compareDigest(value: string | Buffer): Buffer {
  return createHmac('sha256', COMPARE_KEY).update(value).digest()
}

/**
 * True when `presented` equals any secret. Every secret is compared, whatever matched, so
 * timing tells neither how close a guess was nor which secret it hit.
 */
export function matchesAnySecret(presented: string, secrets: readonly string[]): boolean {
  const mine = compareDigest(presented)
  let matched = false
  for (const secret of secrets) matched = timingSafeEqual(mine, compareDigest(secret)) || matched
  return matched
}

/** True when `signatureHex` is HMAC-SHA256(secret, body) for any secret, compared in constant time. */
export function matchesAnyHmac(
  body: Buffer,
  signatureHex: string,
  secrets: readonly string[],
): boolean {
  if (!/^[0-9a-fA-F]{64}$/.test(signatureHex)) return false
  const presented = Buffer.from(signatureHex, 'hex')
  let matched = false
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(body).digest()
    matched = timingSafeEqual(presented, expected) || matched
  }
  return matched
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

const MAX_IDEMPOTENCY_KEY = 200

/** A delivery id header usable as an idempotency key, or null when absent or unusable. */
export function idempotencyKeyFrom(
  headers: IncomingHttpHeaders,
  names: readonly string[],
): string | null {
  for (const name of names) {
    const value = header(headers, name)?.trim()
    if (value && value.length <= MAX_IDEMPOTENCY_KEY) return value
  }
  return null
}

/**
 * Decodes JSON bytes (a UTF-8 byte-order mark is tolerated), or, for forges that can post
 * forms, the JSON in the form's `payload` field.
 */
export function decodeJsonBody(delivery: Delivery, allowForm: boolean): unknown {
  let text = delivery.rawBody.toString('utf8')
  const contentType = header(delivery.headers, 'content-type') ?? ''
  if (allowForm && contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload')
    if (payload === null) throw new BodyError('a form-encoded delivery needs a payload field')
    text = payload
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  if (text.trim() === '') throw new BodyError('the body is empty; a hook delivery is a JSON object')
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new BodyError(
      `the body is not valid JSON (${err instanceof Error ? err.message : 'parse error'})`,
    )
  }
}

/** Parses `value` with `schema`, or describes the first problem as a 400 naming the field. */
export function parseFields<T extends z.ZodType>(
  schema: T,
  value: unknown,
): { ok: true; data: z.output<T> } | { ok: false; error: MalformedDelivery } {
  const parsed = schema.safeParse(value)
  if (parsed.success) return { ok: true, data: parsed.data }
  const { field, message } = describeIssue(parsed.error, value)
  return { ok: false, error: malformed(field, message) }
}

export const shaSchema = z
  .string()
  .regex(/^[0-9a-f]{40}(?:[0-9a-f]{24})?$/, 'must be a 40-character hex commit sha')

/** Forge ids are numbers; some payloads quote them. Stored as text. */
export const idSchema = z
  .union([
    z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be an id (letters, digits, _.:-)'),
  ])
  .transform(String)

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
