import { Command, Option } from 'commander'

import { createApp } from '../app/create-app.ts'
import { loadChallengeFile } from '../config/challenge.ts'
import { loadConfigFile } from '../config/proctor-config.ts'
import { errorMessage, ProctorError } from '../domain/errors.ts'
import { runDemo } from '../demo/run-demo.ts'
import { migrate, openStore } from '../store/database.ts'
import { ApiClient } from './api-client.ts'
import { formatSubmission, type SubmissionView } from './format.ts'

/**
 * The `proctor` command. Exit codes: 0 success, 1 the operation failed (e.g. the demo's
 * submission did not score), 2 bad usage or configuration, 3 proctor's API unreachable.
 */
const program = new Command('proctor')
  .description('Turns a tag push into a sandboxed, scored and archived evaluation.')
  .option('-c, --config <file>', 'configuration file', process.env.PROCTOR_CONFIG ?? 'proctor.yaml')

const apiOptions = (cmd: Command) =>
  cmd
    .addOption(new Option('--api-url <url>', 'proctor API address').env('PROCTOR_API_URL'))
    .addOption(new Option('--token <token>', 'API token').env('PROCTOR_API_TOKEN'))
    .option('--json', 'print JSON for scripts')

function config() {
  return loadConfigFile(program.opts<{ config: string }>().config)
}

program
  .command('serve')
  .description('run the API and the configured worker slots until stopped')
  .option('--no-worker', 'run the API only')
  .action(async (flags: { worker: boolean }) => {
    const app = await createApp(config(), flags.worker ? {} : { workerSlots: 0 })
    await app.start()
    await stopOnSignals(app.close)
  })

program
  .command('worker')
  .description('run a worker without the API (needs the database, the registry and a Docker Engine)')
  .option('--slots <n>', 'jobs at once', (v) => Number(v))
  .option('--queues <ids>', 'comma-separated challenge ids (default: all)')
  .action(async (flags: { slots?: number; queues?: string }) => {
    const base = config()
    const app = await createApp(
      { ...base, worker: { ...base.worker, queues: flags.queues ? flags.queues.split(',') : base.worker.queues } },
      { api: false, workerSlots: flags.slots },
    )
    await app.start()
    await stopOnSignals(app.close)
  })

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(async () => {
    const store = openStore(config().database.url)
    const applied = await migrate(store)
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'the database is up to date')
    await store.close()
  })

program
  .command('demo')
  .description('push the iris baseline as a participant and follow it to its score')
  .option('--keep', 'keep the previous demo database')
  .option('--verbose', "show proctor's own log")
  .action(async (flags: { keep?: boolean; verbose?: boolean }) => {
    const explicit = program.getOptionValueSource('config') === 'cli' ? program.opts<{ config: string }>().config : undefined
    process.exitCode = await runDemo({ config: explicit, keep: flags.keep, verbose: flags.verbose })
  })

const submissions = program.command('submissions').description('list and inspect submissions')

apiOptions(submissions.command('list'))
  .option('--challenge <id>')
  .option('--state <state>')
  .option('--limit <n>', 'how many', '20')
  .action(async (flags: { apiUrl?: string; token?: string; json?: boolean; challenge?: string; state?: string; limit: string }) => {
    const query = new URLSearchParams({ limit: flags.limit })
    if (flags.challenge) query.set('challenge', flags.challenge)
    if (flags.state) query.set('state', flags.state)
    const result = await ApiClient.fromEnv(flags).get<{ submissions: SubmissionView[] }>(`/api/submissions?${query}`)
    if (flags.json) return console.log(JSON.stringify(result, null, 2))
    for (const s of result.submissions) {
      console.log(`${String(s.id).padStart(6)}  ${s.state.padEnd(10)} ${(s.challengeId ?? '-').padEnd(12)} ${s.project.path} ${s.tag}  ${s.score ?? ''}  ${s.reason?.code ?? ''}`)
    }
  })

apiOptions(submissions.command('show').argument('<id>'))
  .action(async (id: string, flags: { apiUrl?: string; token?: string; json?: boolean }) => {
    const s = await ApiClient.fromEnv(flags).get<SubmissionView>(`/api/submissions/${encodeURIComponent(id)}`)
    console.log(flags.json ? JSON.stringify(s, null, 2) : formatSubmission(s))
  })

apiOptions(program.command('status').description('queues: depth, running jobs, oldest waiting'))
  .action(async (flags: { apiUrl?: string; token?: string; json?: boolean }) => {
    const result = await ApiClient.fromEnv(flags).get<{ queues: { queue: string; waiting: number; running: number; oldest: string | null }[] }>('/api/queues')
    if (flags.json) return console.log(JSON.stringify(result, null, 2))
    if (result.queues.length === 0) console.log('no jobs waiting or running')
    for (const q of result.queues) console.log(`${q.queue.padEnd(16)} waiting ${q.waiting}  running ${q.running}  oldest ${q.oldest ?? '-'}`)
  })

const challenge = program.command('challenge').description('challenge definitions')
challenge
  .command('validate')
  .argument('<file>')
  .description('check a challenge file; errors name the file, line and field')
  .action((file: string) => {
    const loaded = loadChallengeFile(file)
    console.log(`${file}: challenge ${loaded.definition.id} is valid (${loaded.definition.phases.map((p) => p.name).join(' → ')})`)
  })

async function stopOnSignals(close: (mode?: 'graceful' | 'immediate') => Promise<void>): Promise<void> {
  await new Promise<void>((resolve) => {
    let signals = 0
    const onSignal = () => {
      signals++
      // The first signal lets running jobs finish; a second stops at once and leaves the
      // leases to expire, so another worker takes the jobs.
      if (signals === 1) void close('graceful').then(resolve)
      else void close('immediate').then(resolve)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}

try {
  await program.parseAsync()
} catch (err) {
  console.error(`proctor: ${errorMessage(err)}`)
  const code = err instanceof ProctorError ? err.code : ''
  process.exitCode = code === 'api_unreachable' ? 3 : code.startsWith('http_') ? 1 : 2
}
