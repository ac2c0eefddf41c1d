/** Human output for the CLI and the demo. */

export interface TimelineEntryView {
  at: string
  kind: string
  state: string | null
  stage: string | null
  reasonCode: string | null
  message: string
}

export interface StageView {
  stage: string
  attempt: number
  wallMs: number | null
  outcome: string | null
  peakMemoryBytes?: number | null
}

export interface SubmissionView {
  id: number
  challengeId: string | null
  state: string
  statusDetail: string
  reason: { code: string; message: string | null } | null
  tag: string
  commit: string
  project: { path: string }
  pusher: string | null
  score: number | null
  scoreSecondary: number | null
  image: {
    reference: string | null
    digest: string | null
    archive: string
    reusedFrom: number | null
    builder: string | null
    builderVersion: string | null
  }
  timeline: TimelineEntryView[]
  evaluations: { number: number; state: string; stages: StageView[] }[]
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
}

/** The submission's timeline: each state with how long it lasted, each stage's time. */
export function formatSubmission(s: SubmissionView): string {
  const lines: string[] = []
  lines.push(
    `submission ${s.id}  ${s.project.path} ${s.tag} (${s.commit.slice(0, 12)})  challenge ${s.challengeId ?? '-'}`,
  )
  lines.push(`state      ${s.state}${s.reason ? ` (${s.reason.code})` : ''}: ${s.statusDetail}`)
  if (s.score !== null)
    lines.push(
      `score      ${s.score}${s.scoreSecondary !== null ? `  (secondary ${s.scoreSecondary})` : ''}`,
    )
  if (s.image.reference) {
    lines.push(
      `image      ${s.image.reference}  [archive: ${s.image.archive}]${s.image.reusedFrom ? ` reused from ${s.image.reusedFrom}` : ''}`,
    )
  }
  if (s.image.builder) lines.push(`builder    ${s.image.builder} ${s.image.builderVersion ?? ''}`)

  lines.push('', 'timeline')
  const states = s.timeline.filter((e) => e.kind === 'state')
  const end = s.timeline.at(-1)?.at
  for (const [i, entry] of states.entries()) {
    const next = states[i + 1]?.at ?? end ?? entry.at
    const lasted = new Date(next).getTime() - new Date(entry.at).getTime()
    const duration = i < states.length - 1 ? formatDuration(lasted).padStart(9) : ''.padStart(9)
    lines.push(`  ${entry.at}  ${(entry.state ?? '').padEnd(10)} ${duration}  ${entry.message}`)
  }

  for (const evaluation of s.evaluations) {
    lines.push('', `stages (evaluation ${evaluation.number}, ${evaluation.state})`)
    for (const stage of evaluation.stages) {
      const memory = stage.peakMemoryBytes
        ? `  peak ${(stage.peakMemoryBytes / 1024 / 1024).toFixed(1)} MiB`
        : ''
      lines.push(
        `  ${stage.stage.padEnd(8)} ${formatDuration(stage.wallMs ?? 0).padStart(9)}  ${stage.outcome ?? 'running'}${memory}`,
      )
    }
  }
  return lines.join('\n')
}
