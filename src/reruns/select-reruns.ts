import type { AppContext } from '../app/context.ts'
import { BadRequestError } from '../domain/errors.ts'
import { createRerun, type RerunCreated, type RerunOptions } from './create-rerun.ts'

/**
 * Which archived submissions a batch re-run takes. Every filter narrows; at least a
 * challenge or a list of submissions is required.
 *
 *   { challenge: 'iris', states: ['scored'], participant: 'alice', createdAfter: '2026-03-01T00:00:00Z' }
 */
export interface RerunFilter {
  readonly challenge?: string
  readonly submissions?: readonly number[]
  /** Default: scored only. */
  readonly states?: readonly ('scored' | 'failed')[]
  /** A participant's username, or a quota subject such as `team:flowers`. */
  readonly participant?: string
  readonly createdAfter?: string
  readonly createdBefore?: string
  readonly minScore?: number
  readonly maxScore?: number
  /** Skip submissions that already have a re-run queued or running (default true). */
  readonly skipBusy?: boolean
}

export async function selectRerunTargets(ctx: AppContext, filter: RerunFilter): Promise<number[]> {
  if (!filter.challenge && !filter.submissions?.length) {
    throw new BadRequestError('a batch re-run names a challenge or a list of submissions')
  }
  let query = ctx.store.db
    .selectFrom('submissions as s')
    .leftJoin('participants as p', 'p.id', 's.participant_id')
    .select('s.id')
    .where('s.archive', '=', 'archived')
    .where('s.image_digest', 'is not', null)
    .where('s.state', 'in', [...(filter.states ?? ['scored'])])
    .orderBy('s.id')
  if (filter.challenge) query = query.where('s.challenge_id', '=', filter.challenge)
  if (filter.submissions?.length) query = query.where('s.id', 'in', [...filter.submissions])
  if (filter.participant) {
    const who = filter.participant
    query = query.where((eb) =>
      eb.or([eb('p.username', '=', who), eb('s.quota_subject', '=', who)]),
    )
  }
  if (filter.createdAfter) query = query.where('s.created_at', '>=', filter.createdAfter)
  if (filter.createdBefore) query = query.where('s.created_at', '<', filter.createdBefore)
  if (filter.minScore !== undefined) query = query.where('s.score', '>=', filter.minScore)
  if (filter.maxScore !== undefined) query = query.where('s.score', '<=', filter.maxScore)
  if (filter.skipBusy ?? true) {
    query = query.where((eb) =>
      eb.not(
        eb.exists(
          eb
            .selectFrom('evaluations as e')
            .select('e.id')
            .whereRef('e.submission_id', '=', 's.id')
            .where('e.state', 'in', ['queued', 'running']),
        ),
      ),
    )
  }
  return (await query.execute()).map((row) => Number(row.id))
}

/** Re-runs every submission the filter selects, each at re-run priority (behind new work). */
export async function createFilteredReruns(
  ctx: AppContext,
  filter: RerunFilter,
  options: RerunOptions,
): Promise<RerunCreated[]> {
  const created: RerunCreated[] = []
  for (const id of await selectRerunTargets(ctx, filter))
    created.push(await createRerun(ctx, id, options))
  return created
}
