import { writeFileSync } from 'node:fs'

import type { Command } from 'commander'

import { loadChallengeFile } from '../../config/challenge.ts'
import { ProctorError } from '../../domain/errors.ts'
import type { AlertCondition } from '../../metrics/alert-conditions.ts'
import type { WorkerView } from '../../dashboard/workers-view.ts'
import type { ApiClient } from '../api-client.ts'
import { formatDuration } from '../format.ts'
import { clientFor, columns, printJson, withApiOptions, type ApiFlags } from './shared.ts'

interface QueueRow {
  queue: string
  waiting: number
  running: number
  oldest: string | null
  oldestAgeSeconds?: number | null
}

/**
 * What proctor is doing, and challenge files:
 *
 *   proctor status                   queues (depth, running, oldest waiting) and alerts
 *   proctor workers                  workers, what they run, their last heartbeat
 *   proctor export submissions --challenge iris --format csv --output iris.csv
 *   proctor challenge validate examples/challenges/iris.yaml
 */
export function addStatusCommands(program: Command): void {
  withApiOptions(program.command('status'))
    .description(
      'queues (depth, running jobs, oldest waiting) and the alert conditions holding now',
    )
    .action(async (flags: ApiFlags) => {
      const client = clientFor(flags)
      const [queues, alerts] = await Promise.all([
        client.get<{ queues: QueueRow[] }>('/api/queues'),
        readAlerts(client),
      ])
      if (flags.json) return printJson({ ...queues, alerts })
      if (queues.queues.length === 0) console.log('no jobs waiting or running')
      else {
        console.log(
          columns([
            ['QUEUE', 'WAITING', 'RUNNING', 'OLDEST WAITING'],
            ...queues.queues.map((q) => [q.queue, String(q.waiting), String(q.running), oldest(q)]),
          ]),
        )
      }
      if (alerts === null) return
      console.log(alerts.length === 0 ? '\nno alerts' : `\nalerts (${alerts.length})`)
      for (const a of alerts) console.log(`  [${a.severity}] ${a.summary}`)
    })

  withApiOptions(program.command('workers'))
    .description('workers: alive or not, what they run, capabilities, last heartbeat (operators)')
    .action(async (flags: ApiFlags) => {
      const result = await clientFor(flags).get<{ workers: WorkerView[] }>('/api/workers')
      if (flags.json) return printJson(result)
      if (result.workers.length === 0) return console.log('no worker has run in the last day')
      console.log(
        columns([
          ['WORKER', 'STATE', 'RUNNING', 'QUEUES', 'CAPABILITIES', 'HEARTBEAT'],
          ...result.workers.map((w) => [
            w.id,
            w.state === 'alive' && !w.healthy ? 'silent' : w.state,
            `${w.running.length}/${w.slots}${w.running.map((j) => ` #${j.submissionId ?? j.jobId}${j.stage ? `:${j.stage}` : ''}`).join('')}`,
            w.queues.join(','),
            w.capabilities.join(',') || '-',
            `${formatDuration(w.heartbeatAgeSeconds * 1000)} ago`,
          ]),
        ]),
      )
    })

  withApiOptions(program.command('export'))
    .description('submissions or a leaderboard as CSV or JSON, for organizers')
    .argument('<what>', 'submissions | leaderboard')
    .option('--challenge <id>', 'the challenge (required for a leaderboard)')
    .option('--state <state>', 'submissions in this state only')
    .option('--round <id>', 'leaderboard round')
    .option('--format <format>', 'csv | json', 'csv')
    .option('--output <file>', 'write here instead of standard output')
    .action(
      async (
        what: string,
        flags: ApiFlags & {
          challenge?: string
          state?: string
          round?: string
          format: string
          output?: string
        },
      ) => {
        if (
          !['submissions', 'leaderboard'].includes(what) ||
          !['csv', 'json'].includes(flags.format)
        ) {
          throw new ProctorError('usage', 'export submissions|leaderboard [--format csv|json]')
        }
        const query = new URLSearchParams()
        if (flags.challenge) query.set('challenge', flags.challenge)
        if (flags.state) query.set('state', flags.state)
        if (flags.round) query.set('round', flags.round)
        const text = await clientFor(flags).getText(
          `/api/export/${what}.${flags.format}?${query.toString()}`,
        )
        if (flags.output) writeFileSync(flags.output, text)
        else process.stdout.write(text)
      },
    )

  program
    .command('challenge')
    .description('challenge definitions')
    .command('validate')
    .argument('<file>')
    .description('check a challenge file; errors name the file, line and field')
    .action((file: string) => {
      const loaded = loadChallengeFile(file)
      console.log(
        `${file}: challenge ${loaded.definition.id} is valid (${loaded.definition.phases.map((p) => p.name).join(' → ')})`,
      )
    })
}

async function readAlerts(client: ApiClient): Promise<AlertCondition[] | null> {
  try {
    return (await client.get<{ alerts: AlertCondition[] }>('/api/alerts')).alerts
  } catch (err) {
    // Only operators see alerts; the queues are still worth showing.
    if (err instanceof ProctorError && err.code === 'http_403') return null
    throw err
  }
}

function oldest(q: QueueRow): string {
  if (q.oldest === null) return '-'
  const age = q.oldestAgeSeconds ?? (Date.now() - Date.parse(q.oldest)) / 1000
  return `${formatDuration(age * 1000)} ago (${q.oldest})`
}
