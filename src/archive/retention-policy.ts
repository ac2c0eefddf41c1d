import { z } from 'zod'

import type { ChallengeDefinition } from '../config/challenge.ts'
import { ProctorError } from '../domain/errors.ts'

/**
 * How long a challenge's archived images are kept. Proposed as a `retention` key of the
 * challenge YAML (docs/archive.md); until the challenge schema has it, the default applies,
 * and a caller (API, CLI) may pass a policy explicitly.
 *
 *   retention:
 *     keepUntilEnd: true           # nothing expires before the challenge's last round ends
 *     keepBestPerParticipant: 3    # each participant's 3 best scored submissions
 *     keepLastPerParticipant: 2    # and their 2 latest
 *     graceDays: 30                # the rest expire 30 days after the end (or the push)
 *
 * Always kept, whatever the policy: pinned submissions, everything on a leaderboard, and
 * images a re-run or a verification is using.
 */
export const retentionPolicySchema = z
  .object({
    keepUntilEnd: z.boolean().default(true),
    keepBestPerParticipant: z.number().int().min(0).default(3),
    keepLastPerParticipant: z.number().int().min(0).default(2),
    graceDays: z.number().min(0).default(30),
  })
  .strict()

export type RetentionPolicy = z.infer<typeof retentionPolicySchema>

export const DEFAULT_RETENTION_POLICY: RetentionPolicy = retentionPolicySchema.parse({})

/**
 * The challenge's policy: its `retention` key once the schema has one, over the defaults,
 * then the caller's overrides. A bad value is refused with the field it is about.
 */
export function retentionPolicyFor(
  definition: ChallengeDefinition,
  overrides: Partial<RetentionPolicy> = {},
): RetentionPolicy {
  const raw: unknown = 'retention' in definition ? definition.retention : undefined
  const parsed = retentionPolicySchema.safeParse({ ...(isRecord(raw) ? raw : {}), ...overrides })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ProctorError(
      'retention_invalid',
      `challenge ${definition.id}: retention.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    )
  }
  return parsed.data
}

/** When the challenge ends: its last round's end; null when it has no rounds. */
export function challengeEnd(definition: ChallengeDefinition): Date | null {
  const ends = definition.rounds.map((r) => new Date(r.end).getTime())
  return ends.length === 0 ? null : new Date(Math.max(...ends))
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
