import { createHmac } from 'node:crypto'

/** The headers of a webhook delivery. Receivers verify the signature before anything else. */
export const WEBHOOK_HEADERS = {
  /** `sha256=<hex>`: HMAC-SHA256 of the raw request body with the endpoint's secret. */
  signature: 'x-proctor-signature',
  /** The outbox message id: the same on every retry of one message. Drop one seen before. */
  delivery: 'x-proctor-delivery',
  /** Seconds since the epoch when this attempt was sent (also in the signed body). */
  timestamp: 'x-proctor-timestamp',
  /** `submission.announced`, `submission.state`, `submission.progress`. */
  event: 'x-proctor-event',
} as const

/** The signature header's value for a body. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`
}
