import type { ParseOutcome } from '../forge-event.ts'
import {
  decodeJsonBody,
  header,
  idempotencyKeyFrom,
  matchesAnyHmac,
  type Delivery,
  type ForgeAdapter,
  type Verification,
} from './adapter.ts'
import { parseGitHubStyle } from './github-style.ts'

/**
 * GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>`. The legacy SHA-1
 * `X-Hub-Signature` is not accepted. `X-GitHub-Delivery` stays the same on redelivery, so it
 * is the idempotency key. JSON and form (`payload=`) content types are both accepted.
 */
export const githubAdapter: ForgeAdapter = {
  kind: 'github',

  verify(delivery: Delivery, secrets: readonly string[]): Verification {
    const signature = header(delivery.headers, 'x-hub-signature-256')
    if (!signature) {
      return {
        ok: false,
        message: 'the X-Hub-Signature-256 header is missing; set a secret on the webhook',
      }
    }
    const hex = signature.startsWith('sha256=') ? signature.slice('sha256='.length) : ''
    return matchesAnyHmac(delivery.rawBody, hex, secrets)
      ? { ok: true }
      : {
          ok: false,
          message: 'the X-Hub-Signature-256 signature does not match any hook secret of this forge',
        }
  },

  decode(delivery: Delivery): unknown {
    return decodeJsonBody(delivery, true)
  },

  parse(body: unknown, delivery: Delivery): ParseOutcome {
    return parseGitHubStyle(body, delivery, {
      pusherField: 'sender',
      eventHeader: 'x-github-event',
      idempotencyKey: idempotencyKeyFrom(delivery.headers, ['x-github-delivery']),
    })
  },
}
