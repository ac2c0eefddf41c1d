import type { Command } from 'commander'

import { setTimeout as sleep } from 'node:timers/promises'

import { ProctorError } from '../../domain/errors.ts'
import type { ApiClient } from '../api-client.ts'
import { followSubmission } from './submission-commands.ts'
import { clientFor, printJson, withApiOptions, type ApiFlags } from './shared.ts'

interface CancelAnswer {
  submissionId: number
  from: string
  jobs: { id: number; was: string }[]
  refunded: boolean
}

interface RequeueAnswer {
  submissionId: number
  from: string
  attempt: number
  evaluationNumber: number
  jobId: number
}

interface SubmitAnswer {
  status: 'accepted' | 'ignored' | 'duplicate'
  eventId: number
  commit: string
  submissionId?: number | null
  reason?: string
  message?: string
}

/**
 * Organizer actions, recorded on the submission's timeline with the token's name:
 *
 *   proctor cancel 42 --reason "duplicate of #41"
 *   proctor requeue 42 --reason "grader fixed"
 *   proctor submit gitlab alice/iris v3 --as alice --follow
 */
export function addActionCommands(program: Command): void {
  withApiOptions(program.command('cancel').argument('<id>', 'submission id'))
    .description('cancel a submission that has not ended (its quota unit is refunded)')
    .requiredOption('--reason <text>', 'why, recorded on the timeline')
    .action(async (id: string, flags: ApiFlags & { reason: string }) => {
      const result = await clientFor(flags).post<CancelAnswer>(
        `/api/submissions/${encodeURIComponent(id)}/cancel`,
        {
          reason: flags.reason,
        },
      )
      if (flags.json) return printJson(result)
      const jobs = result.jobs.map((j) => `job ${j.id} (${j.was})`).join(', ') || 'no job'
      console.log(
        `submission ${result.submissionId} cancelled (was ${result.from}; stopped ${jobs}${result.refunded ? '; quota unit refunded' : ''})`,
      )
    })

  withApiOptions(program.command('requeue').argument('<id>', 'submission id'))
    .description('evaluate an ended submission again, as a new evaluation')
    .requiredOption('--reason <text>', 'why, recorded on the timeline')
    .action(async (id: string, flags: ApiFlags & { reason: string }) => {
      const result = await clientFor(flags).post<RequeueAnswer>(
        `/api/submissions/${encodeURIComponent(id)}/requeue`,
        {
          reason: flags.reason,
        },
      )
      if (flags.json) return printJson(result)
      console.log(
        `submission ${result.submissionId} re-queued (was ${result.from}): evaluation #${result.evaluationNumber}, attempt ${result.attempt}, job ${result.jobId}`,
      )
    })

  withApiOptions(program.command('submit'))
    .description(
      'submit an existing tag without a hook (operators): same checks and quota as a push',
    )
    .argument('<forge>', 'forge id from proctor.yaml')
    .argument('<project>', 'project path, e.g. alice/iris')
    .argument('<tag>', 'the tag to submit')
    .requiredOption('--as <participant>', "the participant's username in the directory")
    .option(
      '--project-id <id>',
      "the forge's project id, when hooks for this project may come later",
    )
    .option('--follow', 'follow the submission until it ends (exit 0 if scored, else 1)')
    .action(
      async (
        forge: string,
        project: string,
        tag: string,
        flags: ApiFlags & { as: string; projectId?: string; follow?: boolean },
      ) => {
        const client = clientFor(flags)
        const result = await client.post<SubmitAnswer>('/api/submit', {
          forge,
          project,
          tag,
          participant: flags.as,
          ...(flags.projectId ? { projectId: flags.projectId } : {}),
        })
        if (flags.json && !flags.follow) return printJson(result)
        if (!flags.json) {
          const detail =
            result.status === 'accepted' ? '' : `: ${result.message ?? result.reason ?? ''}`
          console.log(
            `${result.status}: hook event ${result.eventId}, commit ${result.commit.slice(0, 12)}${detail}`,
          )
        }
        if (!flags.follow) return
        if (result.status === 'ignored') {
          throw new ProctorError(
            'operation_failed',
            `the tag was not submitted (${result.reason ?? 'ignored'})`,
          )
        }
        const submissionId =
          result.submissionId ?? (await waitForSubmission(client, result.eventId))
        process.exitCode = await followSubmission(client, String(submissionId), flags)
      },
    )
}

/** The intake job turns the event into a submission within seconds when a worker serves intake. */
async function waitForSubmission(client: ApiClient, eventId: number): Promise<number> {
  const deadline = Date.now() + 120_000
  while (Date.now() < deadline) {
    const event = await client.get<{
      submissionId: number | null
      status: string
      reason: string | null
    }>(`/api/events/${eventId}`)
    if (event.submissionId) return event.submissionId
    if (event.status === 'failed' || event.status === 'ignored') {
      throw new ProctorError(
        'operation_failed',
        `hook event ${eventId} made no submission: ${event.reason ?? event.status}`,
      )
    }
    await sleep(500)
  }
  throw new ProctorError(
    'operation_failed',
    `hook event ${eventId} made no submission in 2 min: is a worker serving the intake queue?`,
  )
}
