import type { ChallengeDefinition } from '../config/challenge.ts'
import { isReasonCode, REASONS } from '../domain/reasons.ts'
import { reportingDb } from '../outbox/tables.ts'
import { submissionUrl } from '../platform/updates.ts'
import type { Submission } from '../store/schema.ts'
import { parseJson, type Executor } from '../store/transaction.ts'

/** What a submission's issue shows, read from the store when the issue is written. */
export interface IssueView {
  readonly submission: Submission
  readonly url: string | null
  /** The score, or why it is not shown. */
  readonly score: { shown: true; text: string } | { shown: false; why: string } | null
  readonly stages: readonly {
    stage: string
    attempt: number
    outcome: string | null
    wallMs: number | null
  }[]
  readonly logTail: { stage: string; text: string } | null
}

/** The title identifies the submission; it never changes, so a lost create can be found by it. */
export function issueTitle(submission: Pick<Submission, 'id' | 'tag'>): string {
  return `proctor submission ${submission.id} (tag ${submission.tag})`
}

export async function loadIssueView(
  db: Executor,
  submission: Submission,
  options: { publicUrl: string | undefined; logTailLines: number },
): Promise<IssueView> {
  const rdb = reportingDb(db)
  const definition = parseJson<ChallengeDefinition | null>(submission.challenge_snapshot_json, null)
  const evaluation = await rdb
    .selectFrom('evaluations')
    .select('id')
    .where('submission_id', '=', submission.id)
    .orderBy('number', 'desc')
    .executeTakeFirst()
  const stages = evaluation
    ? await rdb
        .selectFrom('stage_runs')
        .select(['stage', 'attempt', 'outcome', 'wall_ms'])
        .where('evaluation_id', '=', evaluation.id)
        .orderBy('id')
        .execute()
    : []

  let logTail: IssueView['logTail'] = null
  if (evaluation && submission.state === 'failed' && options.logTailLines > 0) {
    const log = await rdb
      .selectFrom('logs')
      .select(['stage', 'content'])
      .where('evaluation_id', '=', evaluation.id)
      .orderBy('id', 'desc')
      .executeTakeFirst()
    if (log && mayShowLog(definition, log.stage)) {
      logTail = { stage: log.stage, text: tailLines(log.content, options.logTailLines) }
    }
  }

  let score: IssueView['score'] = null
  if (submission.score !== null) {
    const hidden = definition?.scoring.hidden === true && !(await isReleased(db, submission))
    score = hidden
      ? {
          shown: false,
          why: 'scores of this challenge are hidden until the organizers release them',
        }
      : { shown: true, text: formatScore(submission, definition) }
  }

  return {
    submission,
    url: submissionUrl(options.publicUrl, submission.id),
    score,
    stages: stages.map((s) => ({
      stage: s.stage,
      attempt: Number(s.attempt),
      outcome: s.outcome,
      wallMs: s.wall_ms === null ? null : Number(s.wall_ms),
    })),
    logTail,
  }
}

/**
 * The issue's text. Everything a participant or a log could have written is inside code
 * spans or fences, so it cannot mention people, link, or format the page.
 */
export function renderIssue(view: IssueView): string {
  const s = view.submission
  const lines = [
    `**State:** ${code(s.state)}${s.stage && !isFinal(s.state) ? ` (stage ${code(s.stage)})` : ''}`,
    '',
    `**Tag:** ${code(s.tag)} · **Commit:** ${code(s.commit_sha.slice(0, 12))}${s.challenge_id ? ` · **Challenge:** ${code(s.challenge_id)}` : ''}` +
      (view.url ? ` · [submission page](${view.url})` : ''),
  ]
  // A failure's status detail is its reason's message: shown once, under "Why".
  if (!s.reason_code) lines.push('', fence(s.status_detail, 'text'))

  if (view.score?.shown) lines.push('', `**Score:** ${code(view.score.text)}`)
  else if (view.score) lines.push('', `**Score:** ${view.score.why}`)

  if (s.reason_code) {
    const hint = isReasonCode(s.reason_code) ? REASONS[s.reason_code].hint : null
    lines.push(
      '',
      '### Why',
      '',
      `${code(s.reason_code)}`,
      '',
      fence(s.reason_message ?? '', 'text'),
    )
    if (hint) lines.push('', `Next step: ${hint}`)
  }

  if (view.stages.length > 0) {
    lines.push(
      '',
      '### Stages',
      '',
      '| stage | attempt | outcome | took |',
      '| --- | --- | --- | --- |',
    )
    for (const stage of view.stages) {
      lines.push(
        `| ${code(stage.stage)} | ${stage.attempt} | ${stage.outcome ? code(stage.outcome) : 'running'} | ${stage.wallMs === null ? '–' : formatDuration(stage.wallMs)} |`,
      )
    }
  }

  if (view.logTail) {
    lines.push(
      '',
      `### Log of ${code(view.logTail.stage)} (last lines)`,
      '',
      fence(view.logTail.text, 'text'),
    )
  }

  lines.push('', `<sub>Kept up to date by proctor. State since ${s.state_changed_at}.</sub>`, '')
  return lines.join('\n')
}

/** The challenge's phase policy decides what participants see of a phase's log. */
function mayShowLog(definition: ChallengeDefinition | null, stage: string): boolean {
  const phase = definition?.phases.find((p) => p.name === stage)
  if (!phase) return stage === 'build' || stage === 'fetch'
  return phase.participantLogs !== 'none'
}

async function isReleased(db: Executor, submission: Submission): Promise<boolean> {
  if (!submission.challenge_id) return false
  const row = await reportingDb(db)
    .selectFrom('leaderboard_releases')
    .select('id')
    .where('challenge_id', '=', submission.challenge_id)
    .where('round_id', '=', submission.round_id ?? '')
    .executeTakeFirst()
  return row !== undefined
}

function formatScore(submission: Submission, definition: ChallengeDefinition | null): string {
  const decimals = definition?.scoring.decimals ?? 4
  const main = (submission.score ?? 0).toFixed(decimals)
  return submission.score_secondary === null
    ? main
    : `${main} (secondary ${submission.score_secondary.toFixed(decimals)})`
}

function isFinal(state: string): boolean {
  return ['scored', 'failed', 'rejected', 'cancelled'].includes(state)
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const minutes = Math.floor(ms / 60_000)
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`
}

export function tailLines(text: string, count: number): string {
  const lines = text.replace(/\s+$/, '').split('\n')
  return lines.slice(-count).join('\n')
}

/** An inline code span that holds any text: the fence is longer than any backtick run in it. */
export function code(text: string): string {
  const flat = text.replace(/\s*\n\s*/g, ' ')
  const fenceLength = longestBacktickRun(flat) + 1
  const ticks = '`'.repeat(fenceLength)
  const pad = flat.startsWith('`') || flat.endsWith('`') ? ' ' : ''
  return `${ticks}${pad}${flat}${pad}${ticks}`
}

/** A fenced block that holds any text. */
export function fence(text: string, info = ''): string {
  const ticks = '`'.repeat(Math.max(3, longestBacktickRun(text) + 1))
  return `${ticks}${info}\n${text}\n${ticks}`
}

function longestBacktickRun(text: string): number {
  let longest = 0
  for (const match of text.matchAll(/`+/g)) longest = Math.max(longest, match[0].length)
  return longest
}
