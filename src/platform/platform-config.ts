import { z } from 'zod'

/**
 * The `platform` section of proctor.yaml: where participants see results, and how updates
 * reach it. Keys and secrets come from the environment (`${NAME}`), never from the file.
 *
 *   platform:
 *     kind: crowdai                      # embedded (default) | crowdai | webhook
 *     crowdai:
 *       baseUrl: https://www.aicrowd.com
 *       lookupKey: ${CROWDAI_ADMIN_KEY}  # GET /api/participants/:username
 *       challenges:
 *         iris:                          # proctor's challenge id
 *           clientName: iris_2026        # the platform's challenge_client_name
 *           organizerKey: ${CROWDAI_IRIS_KEY}
 *           rounds: { round-1: 412 }     # proctor round id → challenge_round_id
 *     leaderboards:
 *       public: [iris]                   # embedded leaderboards anyone may read ('*': all)
 *
 *   platform:
 *     kind: webhook
 *     webhook:
 *       endpoints:
 *         - { name: scores, url: https://example.org/proctor-hook, secret: ${SCORES_HOOK_SECRET} }
 */
const crowdaiChallengeSchema = z
  .object({
    clientName: z.string().min(1),
    /** This challenge's organizer key: sent for this challenge's submissions only. */
    organizerKey: z.string().min(1),
    rounds: z.record(z.string(), z.union([z.string(), z.number()]).transform(String)).default({}),
  })
  .strict()

const crowdaiSchema = z
  .object({
    baseUrl: z.string().url(),
    /** The admin key that may look participants up; their own keys are never stored. */
    lookupKey: z.string().min(1),
    timeoutMs: z.coerce.number().int().positive().default(15_000),
    challenges: z.record(z.string(), crowdaiChallengeSchema).default({}),
  })
  .strict()

const webhookEndpointSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, 'an endpoint name is lower-case letters, digits and dashes'),
    url: z.string().url(),
    /** Key of the HMAC-SHA256 signature; share it with the receiver only. */
    secret: z.string().min(16, 'a webhook secret must be at least 16 characters'),
  })
  .strict()

const webhookSchema = z
  .object({
    endpoints: z.array(webhookEndpointSchema).min(1),
    timeoutMs: z.coerce.number().int().positive().default(10_000),
  })
  .strict()

const outboxSchema = z
  .object({
    /** How often an idle dispatcher looks for due messages. */
    pollMs: z.coerce.number().int().positive().default(1_000),
    /** How long a claimed message is held; longer than any target's timeout. */
    leaseSeconds: z.coerce.number().int().positive().default(120),
    concurrency: z.coerce.number().int().positive().default(8),
    backoffBaseMs: z.coerce.number().int().positive().default(2_000),
    backoffCapMs: z.coerce.number().int().positive().default(300_000),
  })
  .strict()

export const platformConfigSchema = z
  .object({
    kind: z.enum(['embedded', 'crowdai', 'webhook']).default('embedded'),
    crowdai: crowdaiSchema.optional(),
    webhook: webhookSchema.optional(),
    leaderboards: z
      .object({ public: z.array(z.string()).default([]) })
      .strict()
      .prefault({}),
    outbox: outboxSchema.prefault({}),
  })
  .superRefine((platform, ctx) => {
    if (platform.kind === 'crowdai' && !platform.crowdai) {
      ctx.addIssue({
        code: 'custom',
        path: ['crowdai'],
        message: 'platform.kind is crowdai: set platform.crowdai (baseUrl, lookupKey, challenges)',
      })
    }
    if (platform.kind === 'webhook' && !platform.webhook) {
      ctx.addIssue({
        code: 'custom',
        path: ['webhook'],
        message: 'platform.kind is webhook: set platform.webhook.endpoints (name, url, secret)',
      })
    }
    const slowest = Math.max(platform.crowdai?.timeoutMs ?? 0, platform.webhook?.timeoutMs ?? 0)
    if (platform.outbox.leaseSeconds * 1000 <= slowest * 2) {
      ctx.addIssue({
        code: 'custom',
        path: ['outbox', 'leaseSeconds'],
        message: `must exceed twice the slowest platform timeout (${slowest} ms), or a slow delivery could be claimed twice`,
      })
    }
  })

export type PlatformConfig = z.infer<typeof platformConfigSchema>
export type CrowdaiConfig = z.infer<typeof crowdaiSchema>
export type WebhookConfig = z.infer<typeof webhookSchema>
