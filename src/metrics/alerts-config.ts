import { z } from 'zod'

const seconds = (fallback: number) => z.coerce.number().int().positive().default(fallback)

/**
 * `alerts` in proctor.yaml: conditions an operator must hear about. The API process checks
 * them every `checkEverySeconds` and POSTs to `webhookUrl` when one starts, every
 * `repeatEverySeconds` while it lasts, and when it ends. They also show on the dashboard
 * and in /metrics (`proctor_alerts_active`), with or without a webhook.
 *
 *   alerts:
 *     webhookUrl: ${ALERTS_WEBHOOK_URL}      # Slack, Mattermost and ntfy accept its `text`
 *     stuckSeconds: { queued: 7200 }         # a submission queued for 2 h is stuck
 *     workerSilentSeconds: 300
 *     outboxStuckSeconds: 900
 *     diskMinFreePercent: 10
 */
export const alertsConfigSchema = z.object({
  webhookUrl: z.string().url().optional(),
  checkEverySeconds: z.coerce.number().int().min(1).default(60),
  repeatEverySeconds: z.coerce.number().int().min(1).default(3600),
  /** A submission in this state longer than this is stuck (time since it entered it). */
  stuckSeconds: z
    .object({
      received: seconds(15 * 60),
      queued: seconds(6 * 3600),
      building: seconds(3600),
      evaluating: seconds(2 * 3600),
    })
    .prefault({}),
  /** A worker marked alive whose last heartbeat is older than this is lost. */
  workerSilentSeconds: seconds(300),
  /** An outbox message still pending this long after it was written is stuck. */
  outboxStuckSeconds: seconds(15 * 60),
  /** The work folder's file system is low below either of these. */
  diskMinFreePercent: z.coerce.number().min(0).max(100).default(10),
  diskMinFreeBytes: z.coerce
    .number()
    .int()
    .min(0)
    .default(5 * 1024 ** 3),
})

export type AlertsConfig = z.infer<typeof alertsConfigSchema>
