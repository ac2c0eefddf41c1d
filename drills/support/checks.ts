import { DrillEnv } from './drill-env.ts'

/** One drill's verdict: what it checked, what it found, and whether every check held. */
export interface DrillResult {
  readonly drill: string
  readonly count: number
  readonly seconds: number
  readonly ok: boolean
  readonly checks: readonly Check[]
  readonly facts: Readonly<Record<string, unknown>>
}

export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

export function check(name: string, ok: boolean, detail = ''): Check {
  return { name, ok, detail }
}

const FINAL = ['scored', 'failed', 'cancelled']

/**
 * The checks every evaluation drill ends with: each submission ended once (one final
 * state event, one evaluate job that ended), with the expected score or a refunded
 * `worker_lost`/`infrastructure`; the platform heard one final report per submission, in
 * order; nothing is left on the engine.
 */
export async function evaluationChecks(
  env: DrillEnv,
  expected: ReadonlyMap<number, number>,
  baseline: ReadonlySet<string>,
): Promise<Check[]> {
  const ids = [...expected.keys()]
  const { db } = env.store
  const submissions = await db
    .selectFrom('submissions')
    .select(['id', 'state', 'score', 'reason_code', 'attempt'])
    .where('id', 'in', ids)
    .execute()
  const finals = await db
    .selectFrom('submission_events')
    .select(['submission_id', 'state'])
    .where('submission_id', 'in', ids)
    .where('kind', '=', 'state')
    .where('state', 'in', FINAL)
    .execute()
  const jobs = await db
    .selectFrom('jobs')
    .select(['submission_id', 'state', 'attempt'])
    .where('submission_id', 'in', ids)
    .where('kind', '=', 'evaluate')
    .execute()
  const refunds = await db
    .selectFrom('quota_charges')
    .select(['submission_id', 'refunded_at'])
    .where('submission_id', 'in', ids)
    .execute()

  const wrong: string[] = []
  for (const s of submissions) {
    const want = expected.get(s.id)
    const scoredRight = s.state === 'scored' && s.score === want
    const refunded = refunds.some((r) => r.submission_id === s.id && r.refunded_at !== null)
    const lostRefunded =
      s.state === 'failed' &&
      ['worker_lost', 'infrastructure'].includes(s.reason_code ?? '') &&
      refunded
    if (!scoredRight && !lostRefunded)
      wrong.push(`#${s.id} ${s.state} ${s.reason_code ?? ''} score ${s.score} (want ${want})`)
  }
  const finalCounts = ids.map((id) => finals.filter((f) => f.submission_id === id).length)
  const jobCounts = ids.map((id) => jobs.filter((j) => j.submission_id === id).length)
  const openJobs = jobs.filter((j) => j.state === 'waiting' || j.state === 'running')

  await env.waitForOutboxDrained()
  const platform = platformChecks(env, ids)
  const leftovers = await waitForNoLeftovers(baseline)

  return [
    check(
      'every submission ended with its score or a refunded worker_lost',
      wrong.length === 0 && submissions.length === ids.length,
      wrong.join('; ') || `${submissions.length} ended`,
    ),
    check(
      'every submission reached a final state exactly once',
      finalCounts.every((n) => n === 1),
      `final events per submission: ${finalCounts.join(',')}`,
    ),
    check(
      'one evaluate job per submission, none left open',
      jobCounts.every((n) => n === 1) && openJobs.length === 0,
      `jobs per submission: ${jobCounts.join(',')}; attempts: ${jobs.map((j) => j.attempt).join(',')}`,
    ),
    ...platform,
    check(
      'no container left behind (builder steps included)',
      leftovers.containers.length === 0,
      leftovers.containers.join(' ') || 'none',
    ),
    check(
      'no builder process left behind',
      leftovers.builders.length === 0,
      leftovers.builders.join(' | ') || 'none',
    ),
  ]
}

/** Exactly one final report per submission, and each submission's reports in outbox order. */
export function platformChecks(env: DrillEnv, ids: readonly number[]): Check[] {
  const byKey = new Map<string, { submissionId: number; state: string }>()
  for (const d of env.platform.deliveries) if (!byKey.has(d.key)) byKey.set(d.key, d)
  const finalsPer = ids.map(
    (id) =>
      [...byKey.values()].filter((d) => d.submissionId === id && FINAL.includes(d.state)).length,
  )
  const repeats = env.platform.deliveries.length - byKey.size
  const outOfOrder: string[] = []
  for (const id of ids) {
    const keys = env.platform.deliveries
      .filter((d) => d.submissionId === id)
      .map((d) => Number(d.key))
    const firsts = keys.filter((k, i) => keys.indexOf(k) === i)
    if (firsts.some((k, i) => i > 0 && k < (firsts[i - 1] ?? 0)))
      outOfOrder.push(`#${id}: ${firsts.join(',')}`)
  }
  return [
    check(
      'the platform received exactly one final report per submission',
      finalsPer.every((n) => n === 1),
      `final reports per submission: ${finalsPer.join(',')}; repeated deliveries (same key): ${repeats}`,
    ),
    check(
      "the platform received each submission's reports in order",
      outOfOrder.length === 0,
      outOfOrder.join('; ') || `${byKey.size} distinct reports in order`,
    ),
  ]
}

/** Waits (up to a minute: the survivors' housekeeping runs every 15 s) for a clean engine. */
export async function waitForNoLeftovers(
  baseline: ReadonlySet<string>,
): Promise<{ containers: string[]; builders: string[] }> {
  const deadline = Date.now() + 60_000
  for (;;) {
    const now = await DrillEnv.containerIds()
    const containers = [...now].filter((id) => !baseline.has(id)).map((id) => id.slice(0, 12))
    const builders = await DrillEnv.builderProcesses()
    if ((containers.length === 0 && builders.length === 0) || Date.now() > deadline)
      return { containers, builders }
    await new Promise((resolve) => setTimeout(resolve, 1_000))
  }
}

export function verdict(
  drill: string,
  count: number,
  started: number,
  checks: Check[],
  facts: Record<string, unknown>,
): DrillResult {
  return {
    drill,
    count,
    seconds: Math.round((Date.now() - started) / 100) / 10,
    ok: checks.every((c) => c.ok),
    checks,
    facts,
  }
}

export function formatResult(result: DrillResult): string {
  const lines = [
    `drill ${result.drill} (count ${result.count}): ${result.ok ? 'PASS' : 'FAIL'} in ${result.seconds} s`,
  ]
  for (const c of result.checks)
    lines.push(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}${c.detail ? ` — ${c.detail}` : ''}`)
  for (const [key, value] of Object.entries(result.facts))
    lines.push(`  · ${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)
  return lines.join('\n')
}
