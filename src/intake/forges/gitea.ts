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
 * Gitea and Forgejo: a bare-hex HMAC-SHA256 of the raw body in `X-Gitea-Signature` (Forgejo:
 * `X-Forgejo-Signature`). Their delivery UUID is the idempotency key.
 */
export const giteaAdapter: ForgeAdapter = {
  kind: 'gitea',

  verify(delivery: Delivery, secrets: readonly string[]): Verification {
    const signature =
      header(delivery.headers, 'x-gitea-signature') ||
      header(delivery.headers, 'x-forgejo-signature')
    if (!signature) {
      return {
        ok: false,
        message:
          'the X-Gitea-Signature (or X-Forgejo-Signature) header is missing; set a secret on the webhook',
      }
    }
    return matchesAnyHmac(delivery.rawBody, signature, secrets)
      ? { ok: true }
      : { ok: false, message: 'the signature does not match any hook secret of this forge' }
  },

  decode(delivery: Delivery): unknown {
    return decodeJsonBody(delivery, true)
  },

  parse(body: unknown, delivery: Delivery): ParseOutcome {
    return parseGitHubStyle(body, delivery, {
      pusherField: 'pusher',
      eventHeader: 'x-gitea-event',
      idempotencyKey: idempotencyKeyFrom(delivery.headers, [
        'x-gitea-delivery',
        'x-forgejo-delivery',
      ]),
    })
  },
}
