import { setTimeout as sleep } from 'node:timers/promises'

import { type Command, Option } from 'commander'

import type { ApiClient } from '../cli/api-client.ts'
import { ProctorError } from '../domain/errors.ts'
import type { FreedBytes, StorageReport } from './accounting.ts'
import { formatBytes, formatRetention, formatStorage, formatVerification } from './cli-format.ts'
import type { GarbageCollectionResult } from './garbage-collect.ts'
import type { RetentionPlan, RetentionResult } from './retention.ts'
import type { VerificationRecord } from './verify.ts'

/**
 * The archive's commands, all through the API:
 *
 *   proctor rerun 42 [--current-rules] [--wait]
 *   proctor rerun --challenge iris [--participant alice] [--state scored] [--after 2026-03-01T00:00:00Z]
 *   proctor verify 42                       exit 0 identical, 1 different or error
 *   proctor storage [--challenge iris] [--participant alice] [--freed 3,4,5]
 *   proctor retention iris [--grace-days 0] [--keep-best 1] [--keep-last 1] [--apply]   (dry run unless --apply)
 *   proctor gc [--dry-run] [--status] [--resume]
 *   proctor pin 42 | proctor unpin 42 | proctor publish <evaluation id>
 */
export interface ArchiveCommandDeps {
  /** The API client for a command's flags (`--api-url`, `--token`, or the environment). */
  client(flags: ApiFlags): ApiClient
  /** Where output goes (default: standard output). */
  print?: (text: string) => void
}

export interface ApiFlags {
  apiUrl?: string
  token?: string
  json?: boolean
}

const POLL_MS = 1_000

export function registerArchiveCommands(program: Command, deps: ArchiveCommandDeps): void {
  const print = deps.print ?? ((text: string) => console.log(text))
  const withApi = (cmd: Command) =>
    cmd
      .addOption(new Option('--api-url <url>', 'proctor API address').env('PROCTOR_API_URL'))
      .addOption(new Option('--token <token>', 'API token').env('PROCTOR_API_TOKEN'))
      .option('--json', 'print JSON for scripts')
  const json = (value: unknown) => print(JSON.stringify(value, null, 2))

  withApi(
    program
      .command('rerun')
      .argument('[submission]', 'submission id')
      .description(
        'evaluate archived images again, as new evaluations (the first result never changes)',
      ),
  )
    .option(
      '--current-rules',
      'use the challenge as loaded now, not the rules recorded with the submission',
    )
    .option('--challenge <id>', 'batch: every archived submission of a challenge')
    .option('--participant <name>', 'batch: only this participant (or team:<name>)')
    .option('--state <state...>', 'batch: submission states (scored, failed)', ['scored'])
    .option('--after <time>', 'batch: created at or after (ISO time)')
    .option('--before <time>', 'batch: created before (ISO time)')
    .option('--wait', 'wait for a single re-run to finish and print its result')
    .action(
      async (
        submission: string | undefined,
        flags: ApiFlags & {
          currentRules?: boolean
          challenge?: string
          participant?: string
          state: string[]
          after?: string
          before?: string
          wait?: boolean
        },
      ) => {
        const api = deps.client(flags)
        const rules = flags.currentRules ? 'current' : 'recorded'
        if (submission !== undefined) {
          const created = await api.post<{
            submissionId: number
            evaluationId: number
            number: number
          }>(`/api/submissions/${id(submission)}/rerun`, { rules })
          if (!flags.wait)
            return flags.json
              ? json(created)
              : print(
                  `re-run queued: submission ${created.submissionId}, evaluation ${created.number} (id ${created.evaluationId}), ${rules} rules`,
                )
          const finished = await waitForEvaluation(api, created.submissionId, created.number)
          if (flags.json) return json(finished)
          print(
            `submission ${created.submissionId} evaluation ${created.number}: ${finished.state}${finished.score !== null ? ` score ${finished.score}` : ''}`,
          )
          if (finished.state !== 'scored') process.exitCode = 1
          return
        }
        if (!flags.challenge)
          throw new ProctorError('usage', 'give a submission id, or --challenge for a batch')
        const body = {
          challenge: flags.challenge,
          states: flags.state,
          rules,
          ...(flags.participant ? { participant: flags.participant } : {}),
          ...(flags.after ? { createdAfter: flags.after } : {}),
          ...(flags.before ? { createdBefore: flags.before } : {}),
        }
        const result = await api.post<{ reruns: { submissionId: number; number: number }[] }>(
          '/api/reruns',
          body,
        )
        if (flags.json) return json(result)
        print(
          `${result.reruns.length} re-run(s) queued behind new submissions${result.reruns.length ? `: ${result.reruns.map((r) => r.submissionId).join(', ')}` : ''}`,
        )
      },
    )

  withApi(
    program
      .command('verify')
      .argument('<submission>', 'submission id')
      .description(
        'rebuild from the recorded commit without cache and compare with the archived image, file by file',
      ),
  )
    .option('--no-wait', 'start it and print its id')
    .action(async (submission: string, flags: ApiFlags & { wait: boolean }) => {
      const api = deps.client(flags)
      const started = await api.post<{ verificationId: number }>(
        `/api/submissions/${id(submission)}/verify`,
      )
      if (!flags.wait)
        return flags.json ? json(started) : print(`verification ${started.verificationId} started`)
      let record: VerificationRecord
      for (;;) {
        record = await api.get<VerificationRecord>(`/api/verifications/${started.verificationId}`)
        if (record.finishedAt) break
        await sleep(POLL_MS)
      }
      if (record.outcome !== 'identical') process.exitCode = 1
      print(flags.json ? JSON.stringify(record, null, 2) : formatVerification(record))
    })

  withApi(
    program
      .command('storage')
      .description(
        'bytes the archive holds per challenge and participant, each shared layer counted once',
      ),
  )
    .option('--challenge <id>')
    .option('--participant <name>')
    .option(
      '--freed <ids>',
      'what deleting these submissions’ images would free (comma-separated ids)',
    )
    .action(
      async (flags: ApiFlags & { challenge?: string; participant?: string; freed?: string }) => {
        const api = deps.client(flags)
        if (flags.freed) {
          const freed = await api.post<FreedBytes>('/api/storage/freed', {
            submissions: flags.freed.split(',').map(id),
          })
          return flags.json
            ? json(freed)
            : print(
                `deleting ${freed.images.length} image(s) frees ${formatBytes(freed.bytes)} (${freed.blobs} blobs)${freed.sharedWith.length ? `; also used by submissions ${freed.sharedWith.join(', ')}` : ''}`,
              )
        }
        const query = new URLSearchParams()
        if (flags.challenge) query.set('challenge', flags.challenge)
        if (flags.participant) query.set('participant', flags.participant)
        const report = await api.get<StorageReport>(
          `/api/storage${query.size ? `?${query.toString()}` : ''}`,
        )
        print(flags.json ? JSON.stringify(report, null, 2) : formatStorage(report))
      },
    )

  withApi(
    program
      .command('retention')
      .argument('<challenge>')
      .description('which archived images the retention policy expires (a dry run unless --apply)'),
  )
    .option('--apply', 'delete the expired images from the registry (space returns at the next gc)')
    .option('--keep-best <n>', "each participant's best N", (v) => Number(v))
    .option('--keep-last <n>', "each participant's latest N", (v) => Number(v))
    .option('--grace-days <n>', 'days after the end (or the push) before an image expires', (v) =>
      Number(v),
    )
    .option('--no-keep-until-end', 'let images expire while the challenge runs')
    .action(
      async (
        challenge: string,
        flags: ApiFlags & {
          apply?: boolean
          keepBest?: number
          keepLast?: number
          graceDays?: number
          keepUntilEnd: boolean
        },
      ) => {
        const policy = {
          ...(flags.keepBest !== undefined ? { keepBestPerParticipant: flags.keepBest } : {}),
          ...(flags.keepLast !== undefined ? { keepLastPerParticipant: flags.keepLast } : {}),
          ...(flags.graceDays !== undefined ? { graceDays: flags.graceDays } : {}),
          ...(flags.keepUntilEnd ? {} : { keepUntilEnd: false }),
        }
        const result = await deps
          .client(flags)
          .post<
            { dryRun: boolean; plan: RetentionPlan } & Partial<RetentionResult>
          >(`/api/challenges/${encodeURIComponent(challenge)}/retention`, { apply: flags.apply ?? false, policy })
        print(flags.json ? JSON.stringify(result, null, 2) : formatRetention(result))
      },
    )

  withApi(
    program
      .command('gc')
      .description(
        'registry garbage collection: pauses pushes, registry read-only, garbage-collect, restore',
      ),
  )
    .option('--dry-run', 'report what would be deleted')
    .option('--status', 'show whether pushes are paused and the last runs')
    .option('--resume', 'end a pause a failed run left behind')
    .action(async (flags: ApiFlags & { dryRun?: boolean; status?: boolean; resume?: boolean }) => {
      const api = deps.client(flags)
      if (flags.status) return json(await api.get('/api/registry/maintenance'))
      if (flags.resume) return json(await api.post('/api/registry/resume'))
      const result = await api.post<GarbageCollectionResult>('/api/registry/gc', {
        dryRun: flags.dryRun ?? false,
      })
      if (result.outcome !== 'done') process.exitCode = 1
      if (flags.json) return json(result)
      print(
        result.outcome === 'done'
          ? `garbage collection ${result.id}${result.dryRun ? ' (dry run)' : ''}: ${result.blobsEligible ?? '?'} blobs ${result.dryRun ? 'would go' : 'deleted'}, ${result.reclaimedBytes === null ? 'space not measured (not filesystem storage)' : `${formatBytes(result.reclaimedBytes)} reclaimed`}; pushes paused ${result.pausedMs} ms, registry read-only ${result.readOnlyMs} ms`
          : `garbage collection ${result.id} failed: ${result.error ?? ''}`,
      )
    })

  for (const [name, route, what] of [
    ['pin', 'pin', 'keep this submission’s image whatever the retention policy says'],
    ['unpin', 'unpin', 'let the retention policy apply again'],
  ] as const) {
    withApi(program.command(name).argument('<submission>').description(what)).action(
      async (submission: string, flags: ApiFlags) => {
        const result = await deps.client(flags).post<{
          submissionId: number
          pinned: boolean
        }>(`/api/submissions/${id(submission)}/${route}`)
        print(
          flags.json
            ? JSON.stringify(result, null, 2)
            : `submission ${result.submissionId} ${result.pinned ? 'pinned' : 'unpinned'}`,
        )
      },
    )
  }

  withApi(
    program
      .command('publish')
      .argument('<evaluation>', 'evaluation id of a finished re-run')
      .description("let a re-run's result reach the platform"),
  ).action(async (evaluation: string, flags: ApiFlags) => {
    const result = await deps.client(flags).post<{
      evaluationId: number
      submissionId: number
      alreadyPublished: boolean
    }>(`/api/evaluations/${id(evaluation)}/publish`)
    print(
      flags.json
        ? JSON.stringify(result, null, 2)
        : `re-run ${result.evaluationId} of submission ${result.submissionId} ${result.alreadyPublished ? 'was already published' : 'published'}`,
    )
  })
}

async function waitForEvaluation(api: ApiClient, submissionId: number, number: number) {
  for (;;) {
    const s = await api.get<{
      evaluations: { number: number; state: string; score?: number | null }[]
    }>(`/api/submissions/${submissionId}`)
    const evaluation = s.evaluations.find((e) => e.number === number)
    if (evaluation && ['scored', 'failed', 'cancelled'].includes(evaluation.state)) {
      return { submissionId, number, state: evaluation.state, score: evaluation.score ?? null }
    }
    await sleep(POLL_MS)
  }
}

function id(text: string): number {
  const n = Number(text.trim())
  if (!Number.isInteger(n) || n <= 0)
    throw new ProctorError('usage', `${JSON.stringify(text)} is not an id`)
  return n
}
