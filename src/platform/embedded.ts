import { DELIVERED, type DeliveryResult } from '../outbox/target.ts'
import type { Submission } from '../store/schema.ts'
import type { AnnounceResult, Platform } from './platform.ts'

/**
 * The default platform: proctor's own store is the platform, so announcing only names the
 * submission by proctor's id and never refuses, and there is nothing to deliver updates to.
 * Leaderboards and participant views are served by proctor's API from the same rows
 * (leaderboard.ts).
 */
export class EmbeddedPlatform implements Platform {
  readonly kind = 'embedded' as const
  readonly targets: readonly string[] = []

  announce(submission: Submission): Promise<AnnounceResult> {
    return Promise.resolve({ ok: true, platformSubmissionId: `proctor:${submission.id}` })
  }

  update(): Promise<DeliveryResult> {
    return Promise.resolve(DELIVERED)
  }
}
