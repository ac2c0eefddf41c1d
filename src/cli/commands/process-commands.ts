import type { Command } from 'commander'

import type { ProctorConfig } from '../../config/proctor-config.ts'
import { configOf, rootOf } from './shared.ts'

// The service's modules load only for the commands that run it: `proctor status` and the
// other API commands start fast and need neither Docker nor the database drivers.
const loadApp = () => import('../../app/create-app.ts')
const loadStore = () => import('../../store/database.ts')

/**
 * The commands that run proctor itself, locally: `serve`, `worker`, `migrate`, `demo`.
 *
 *   proctor serve --pretty          API, worker slots, outbox and alert checks; readable logs
 *   proctor worker --slots 2 --queues iris,digits
 */
export function addProcessCommands(program: Command): void {
  program
    .command('serve')
    .description('run the API, the dashboard and the configured worker slots until stopped')
    .option('--no-worker', 'run the API only')
    .option('--pretty', 'human-readable logs for a terminal (default: JSON lines)')
    .action(async function serve(this: Command, flags: { worker: boolean; pretty?: boolean }) {
      const { createApp } = await loadApp()
      const app = await createApp(
        withPretty(configOf(this), flags.pretty),
        flags.worker ? {} : { workerSlots: 0 },
      )
      await app.start()
      await stopOnSignals((mode) => app.close(mode))
    })

  program
    .command('worker')
    .description(
      'run a worker without the API (needs the database, the registry and a Docker Engine)',
    )
    .option('--slots <n>', 'jobs at once', (v) => Number(v))
    .option('--queues <ids>', 'comma-separated challenge ids (default: all)')
    .option('--pretty', 'human-readable logs for a terminal (default: JSON lines)')
    .action(async function worker(
      this: Command,
      flags: { slots?: number; queues?: string; pretty?: boolean },
    ) {
      const base = withPretty(configOf(this), flags.pretty)
      const queues = flags.queues ? flags.queues.split(',') : base.worker.queues
      const { createApp } = await loadApp()
      const app = await createApp(
        { ...base, worker: { ...base.worker, queues } },
        { api: false, workerSlots: flags.slots },
      )
      await app.start()
      await stopOnSignals((mode) => app.close(mode))
    })

  program
    .command('migrate')
    .description('apply pending database migrations')
    .action(async function runMigrate(this: Command) {
      const { migrate, openStore } = await loadStore()
      const store = openStore(configOf(this).database.url)
      const applied = await migrate(store)
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'the database is up to date')
      await store.close()
    })

  program
    .command('demo')
    .description('push the iris baseline as a participant and follow it to its score')
    .option('--keep', 'keep the previous demo database')
    .option('--verbose', "show proctor's own log")
    .action(async function demo(this: Command, flags: { keep?: boolean; verbose?: boolean }) {
      const root = rootOf(this)
      const explicit =
        root.getOptionValueSource('config') === 'cli'
          ? root.opts<{ config: string }>().config
          : undefined
      const { runDemo } = await import('../../demo/run-demo.ts')
      process.exitCode = await runDemo({
        config: explicit,
        keep: flags.keep,
        verbose: flags.verbose,
      })
    })
}

function withPretty(config: ProctorConfig, pretty: boolean | undefined): ProctorConfig {
  return pretty ? { ...config, log: { ...config.log, pretty: true } } : config
}

async function stopOnSignals(
  close: (mode?: 'graceful' | 'immediate') => Promise<void>,
): Promise<void> {
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
