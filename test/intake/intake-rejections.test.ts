import { readFileSync } from 'node:fs'
import path from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import type { TestContextOptions } from './support/context.ts'
import { FLOWERS } from './support/context.ts'
import { Scenario } from './support/scenario.ts'

interface IntakeCase {
  name: string
  setup?: TestContextOptions & { repoName?: string; manifest?: string | null }
  tag?: string
  userId?: number
  /** Deliver a hook for a commit the forge does not have. */
  missingCommit?: boolean
  expected:
    | { state: 'rejected'; code: string; message: RegExp }
    | { state: 'queued'; roundId?: string | null; chargeRoundId?: string | null; debug?: number }
}

const manifest = (fields: Record<string, unknown>) =>
  JSON.stringify({ challenge_id: FLOWERS, ...fields })
const trailingComma = readFileSync(
  path.resolve(import.meta.dirname, 'fixtures/manifests/trailing-comma.json'),
  'utf8',
)

const CASES: IntakeCase[] = [
  {
    name: 'rejects manifest_missing when crowdai.json is absent',
    setup: { manifest: null },
    expected: {
      state: 'rejected',
      code: 'manifest_missing',
      message: /^crowdai\.json not found at the repository root of tag v1$/,
    },
  },
  {
    name: 'rejects manifest_invalid with the line and column of a trailing comma',
    setup: { manifest: trailingComma },
    expected: {
      state: 'rejected',
      code: 'manifest_invalid',
      message: /line 3, column 29: a trailing comma is not allowed/,
    },
  },
  {
    name: 'rejects challenge_unknown naming the id',
    setup: { manifest: JSON.stringify({ challenge_id: 'no-such-challenge' }) },
    expected: {
      state: 'rejected',
      code: 'challenge_unknown',
      message: /"no-such-challenge", which does not exist/,
    },
  },
  {
    name: 'rejects challenge_closed while the challenge does not accept submissions',
    setup: { challenges: [{ extra: { acceptSubmissions: false } }] },
    expected: {
      state: 'rejected',
      code: 'challenge_closed',
      message: /does not accept submissions/,
    },
  },
  {
    name: 'rejects challenge_closed after the last round when afterLastRound is refuse',
    setup: {
      challenges: [
        {
          extra: {
            rounds: [{ id: 'r1', start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' }],
          },
        },
      ],
    },
    expected: {
      state: 'rejected',
      code: 'challenge_closed',
      message: /closed at 2026-02-01T00:00:00.000Z \(end of round r1\)/,
    },
  },
  {
    name: 'rejects challenge_closed before the first round, naming when it opens',
    setup: {
      challenges: [
        {
          extra: {
            rounds: [{ id: 'r1', start: '2026-04-01T00:00:00Z', end: '2026-05-01T00:00:00Z' }],
          },
        },
      ],
    },
    expected: {
      state: 'rejected',
      code: 'challenge_closed',
      message: /round r1 opens at 2026-04-01T00:00:00.000Z/,
    },
  },
  {
    name: 'queues into the open round',
    setup: {
      challenges: [
        {
          extra: {
            rounds: [{ id: 'r1', start: '2026-03-01T00:00:00Z', end: '2026-04-01T00:00:00Z' }],
          },
        },
      ],
    },
    expected: { state: 'queued', roundId: 'r1' },
  },
  {
    name: 'charges within the round when the round sets its own quota',
    setup: {
      challenges: [
        {
          extra: {
            rounds: [
              { id: 'r1', start: '2026-03-01T00:00:00Z', end: '2026-04-01T00:00:00Z', quota: { limit: 2, window: '24h' } },
            ],
          },
        },
      ],
    },
    expected: { state: 'queued', roundId: 'r1', chargeRoundId: 'r1' },
  },
  {
    name: 'queues after the last round as post-challenge when the challenge allows it',
    setup: {
      challenges: [
        {
          extra: {
            afterLastRound: 'post-challenge',
            rounds: [{ id: 'r1', start: '2026-01-01T00:00:00Z', end: '2026-02-01T00:00:00Z' }],
          },
        },
      ],
    },
    expected: { state: 'queued', roundId: 'post-challenge' },
  },
  {
    name: 'rejects name_mismatch naming the repository and the challenge',
    setup: { repoName: 'my-flowers' },
    expected: {
      state: 'rejected',
      code: 'name_mismatch',
      message:
        /repository is named "my-flowers" but crowdai\.json names challenge "flower-classification"/,
    },
  },
  {
    name: 'compares the repository name and the challenge id ignoring case',
    setup: {
      repoName: 'Flower-Classification',
      manifest: JSON.stringify({ challenge_id: 'FLOWER-classification' }),
    },
    expected: { state: 'queued' },
  },
  {
    name: "rejects tag_ignored for a tag outside the challenge's pattern",
    setup: { challenges: [{ extra: { tagPattern: 'submission-*' } }] },
    tag: 'v1',
    expected: {
      state: 'rejected',
      code: 'tag_ignored',
      message: /tag v1 does not match .* tag pattern "submission-\*"/,
    },
  },
  {
    name: "queues a tag that matches the challenge's pattern",
    setup: { challenges: [{ extra: { tagPattern: 'submission-*' } }] },
    tag: 'submission-3',
    expected: { state: 'queued' },
  },
  {
    name: 'rejects participant_unknown for a pusher the directory does not map',
    userId: 999,
    expected: {
      state: 'rejected',
      code: 'participant_unknown',
      message: /gitlab account alice \(id 999\) is not registered/,
    },
  },
  {
    name: 'rejects debug_not_allowed for a debug submission the challenge does not take',
    setup: { manifest: manifest({ debug: true }) },
    expected: {
      state: 'rejected',
      code: 'debug_not_allowed',
      message: /does not take debug submissions/,
    },
  },
  {
    name: 'queues a debug submission where the challenge allows it',
    setup: { manifest: manifest({ debug: true }), challenges: [{ extra: { allowDebug: true } }] },
    expected: { state: 'queued', debug: 1 },
  },
  {
    name: 'rejects commit_unreachable when the forge does not have the commit',
    missingCommit: true,
    expected: {
      state: 'rejected',
      code: 'commit_unreachable',
      message: /could not be fetched from the forge/,
    },
  },
]

describe('intake checks', () => {
  let s: Scenario | undefined

  afterEach(async () => {
    await s?.close()
    s = undefined
  })

  it.each(CASES)('$name', async (intakeCase) => {
    s = await Scenario.create(intakeCase.setup)
    const tag = intakeCase.tag ?? 'v1'
    if (intakeCase.missingCommit) {
      const sha = 'c0ffee'.padEnd(40, '1')
      await s.deliverPush({ ref: `refs/tags/${tag}`, after: sha, commitSha: sha })
    } else {
      await s.pushAndDeliver(
        tag,
        intakeCase.userId === undefined ? {} : { userId: intakeCase.userId },
      )
    }

    await s.drain()

    const submission = await s.onlySubmission()
    const expected = intakeCase.expected
    const event = await s.db.selectFrom('hook_events').selectAll().executeTakeFirstOrThrow()
    expect(event).toMatchObject({ status: 'processed', submission_id: submission.id })
    if (expected.state === 'rejected') {
      expect(submission).toMatchObject({ state: 'rejected', reason_code: expected.code })
      expect(submission.reason_message).toMatch(expected.message)
      expect(submission.status_detail).toBe(submission.reason_message)
      expect(await s.charges()).toEqual([])
      expect(await s.jobs('evaluate')).toEqual([])
    } else {
      expect(submission).toMatchObject({
        state: 'queued',
        round_id: expected.roundId ?? null,
        debug: expected.debug ?? 0,
      })
      // A round with its own quota charges within the round; otherwise the charge counts
      // against the challenge's quota across rounds (docs/quotas.md).
      expect(await s.charges()).toEqual([
        expect.objectContaining({ round_id: expected.chargeRoundId ?? null, debug: expected.debug ?? 0 }),
      ])
    }
  })
})
