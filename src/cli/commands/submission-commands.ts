import type { Command } from 'commander'

import { ProctorError } from '../../domain/errors.ts'
import { TERMINAL_STATES, type SubmissionState } from '../../domain/states.ts'
import type { LogEvent, TimelineEvent } from '../../events/stream-event.ts'
import type { ApiClient } from '../api-client.ts'
import { followStream } from '../event-stream.ts'
import { FollowDisplay } from '../follow-display.ts'
import { formatSubmission, type SubmissionView } from '../format.ts'
import { clientFor, columns, printJson, withApiOptions, type ApiFlags } from './shared.ts'

/**
 * `proctor submissions list|show|follow`.
 *
 *   proctor submissions list --challenge iris --state failed --limit 20
 *   proctor submissions show 42 --logs
 *   proctor submissions follow 42        # live, until it ends; exit 0 if scored, else 1
 */
export function addSubmissionCommands(program: Command): void {
  const submissions = program
    .command('submissions')
    .description('list, inspect and follow submissions')

  withApiOptions(submissions.command('list'))
    .description('submissions, newest first')
    .option('--challenge <id>')
    .option('--state <state>')
    .option('--limit <n>', 'how many', '20')
    .option('--before <id>', 'only older than this submission id (paging)')
    .action(
      async (
        flags: ApiFlags & { challenge?: string; state?: string; limit: string; before?: string },
      ) => {
        const query = new URLSearchParams({ limit: flags.limit })
        if (flags.challenge) query.set('challenge', flags.challenge)
        if (flags.state) query.set('state', flags.state)
        if (flags.before) query.set('before', flags.before)
        const result = await clientFor(flags).get<{ submissions: SubmissionView[] }>(
          `/api/submissions?${query.toString()}`,
        )
        if (flags.json) return printJson(result)
        if (result.submissions.length === 0) return console.log('no submissions match')
        console.log(
          columns([
            ['ID', 'STATE', 'CHALLENGE', 'PROJECT', 'TAG', 'SCORE', 'REASON'],
            ...result.submissions.map((s) => [
              String(s.id),
              s.state,
              s.challengeId ?? '-',
              s.project.path,
              s.tag,
              s.score === null ? '' : String(s.score),
              s.reason?.code ?? '',
            ]),
          ]),
        )
      },
    )

  withApiOptions(submissions.command('show').argument('<id>'))
    .description('a submission: state, score, image, timeline with durations, stages')
    .option('--logs', 'also print the captured logs')
    .action(async (id: string, flags: ApiFlags & { logs?: boolean }) => {
      const client = clientFor(flags)
      const s = await client.get<SubmissionView>(`/api/submissions/${encodeURIComponent(id)}`)
      const logs = flags.logs ? await readLogs(client, id) : []
      if (flags.json) return printJson(flags.logs ? { ...s, logs } : s)
      console.log(formatSubmission(s))
      for (const log of logs) {
        console.log(
          `\nlog: ${log.stage} (evaluation ${log.evaluation}, ${log.bytesTotal} bytes, ${log.bytesElided} elided)`,
        )
        console.log(log.text)
      }
    })

  withApiOptions(submissions.command('follow').argument('<id>'))
    .description(
      'show a submission live (its timeline, then each change as it happens) until it ends',
    )
    .option('--logs', "print each stage's log when it is stored (operator tokens)")
    .option('--timeout <seconds>', 'give up after this long (exit 1)')
    .action(async (id: string, flags: ApiFlags & { logs?: boolean; timeout?: string }) => {
      process.exitCode = await followSubmission(clientFor(flags), id, flags)
    })
}

async function readLogs(client: ApiClient, id: string) {
  try {
    const { logs } = await client.get<{
      logs: {
        evaluation: number
        stage: string
        text: string
        bytesTotal: number
        bytesElided: number
      }[]
    }>(`/api/submissions/${encodeURIComponent(id)}/logs`)
    return logs
  } catch (err) {
    // No evaluation yet: no logs.
    if (err instanceof ProctorError && err.code === 'http_404') return []
    throw err
  }
}

/** Follows a submission through the event stream; the exit code says how it ended. */
export async function followSubmission(
  client: ApiClient,
  id: string,
  flags: { json?: boolean; logs?: boolean; timeout?: string },
): Promise<number> {
  const path = `/api/submissions/${encodeURIComponent(id)}`
  const first = await client.get<SubmissionView>(path)
  const tty = Boolean(process.stdout.isTTY) && !flags.json
  const display = new FollowDisplay(process.stdout, {
    live: tty,
    color: tty && !process.env.NO_COLOR,
  })
  if (!flags.json) {
    console.log(
      `submission ${first.id}  ${first.project.path} ${first.tag} (${first.commit.slice(0, 12)})  challenge ${first.challengeId ?? '-'}`,
    )
  }

  let ended: SubmissionState | null = null
  let ready = false
  display.start()
  const timeoutMs = flags.timeout ? Number(flags.timeout) * 1000 : null
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((resolve) => {
    if (timeoutMs !== null) timer = setTimeout(() => resolve('timeout'), timeoutMs)
  })
  const followed = followStream(client, `${path}/events`, {
    onReconnect: (attempt) =>
      display.note(`  (the event stream dropped; reconnecting, attempt ${attempt})`),
    onMessage(message) {
      const data = JSON.parse(message.data) as unknown
      if (message.event === 'ready') {
        ready = true
        const state = (data as { state: SubmissionState }).state
        if (TERMINAL_STATES.has(state)) ended = state
        return ended !== null
      }
      if (flags.json) console.log(JSON.stringify({ event: message.event, id: message.id, data }))
      else if (message.event === 'log') display.log(data as LogEvent, flags.logs === true)
      else display.timeline(data as TimelineEvent)
      const event = data as TimelineEvent
      if (
        ready &&
        event.kind === 'state' &&
        event.state &&
        TERMINAL_STATES.has(event.state as SubmissionState)
      ) {
        ended = event.state as SubmissionState
      }
      return ended !== null
    },
  })
  try {
    const outcome = await Promise.race([followed, timedOut])
    if (outcome === 'timeout') {
      display.stop()
      console.error(`proctor: submission ${id} did not end within ${flags.timeout} s`)
      return 1
    }
  } finally {
    clearTimeout(timer)
    display.stop()
  }

  const last = await client.get<SubmissionView>(path)
  if (flags.json) {
    console.log(
      JSON.stringify({
        event: 'end',
        data: { state: last.state, score: last.score, reason: last.reason },
      }),
    )
  } else {
    const result =
      last.state === 'scored'
        ? `scored ${last.score}`
        : `${last.state}${last.reason ? ` (${last.reason.code})` : ''}: ${last.statusDetail}`
    console.log(`\nsubmission ${last.id} ${result}`)
  }
  return last.state === 'scored' ? 0 : 1
}
