import type { Command } from 'commander'

import { loadConfigFile, type ProctorConfig } from '../config/proctor-config.ts'
import type { HostReport } from './host-tools.ts'

/**
 * Commands for running many workers, run locally on a worker host (they need the database
 * and the Docker Engine, not the API):
 *
 *   proctor host                  what this host offers: capabilities (gVisor, GPUs), disks,
 *                                 and whether its disk guard lets it take jobs
 *   proctor sweep [--prune-images] remove what dead workers left on this host (containers of
 *                                 lost attempts, orphaned builders), mark silent workers lost;
 *                                 with --prune-images also remove images no longer needed
 *
 * Both print JSON with --json. Wired by the CLI's main.ts: `registerScaleCommands(program)`.
 */
export function registerScaleCommands(program: Command): void {
  program
    .command('host')
    .description("show this worker host's capabilities and disk state")
    .option('--json', 'print JSON for scripts')
    .action(async function host(this: Command, flags: { json?: boolean }) {
      const { openHost } = await loadHost()
      const opened = openHost(configOf(this))
      try {
        const report = await opened.describe()
        if (flags.json) console.log(JSON.stringify(report, null, 2))
        else console.log(formatHost(report))
        process.exitCode = report.takesJobs ? 0 : 1
      } finally {
        await opened.close()
      }
    })

  program
    .command('sweep')
    .description('remove what dead workers left on this host; mark silent workers lost')
    .option('--prune-images', 'also remove submission images no longer needed')
    .option('--json', 'print JSON for scripts')
    .action(async function sweep(this: Command, flags: { pruneImages?: boolean; json?: boolean }) {
      const { openHost } = await loadHost()
      const opened = openHost(configOf(this))
      try {
        const result = await opened.sweep(Boolean(flags.pruneImages))
        if (flags.json) console.log(JSON.stringify(result, null, 2))
        else
          console.log(
            `removed ${result.containersRemoved.length} container(s), killed ${result.buildersKilled.length} ` +
              `builder(s), marked ${result.workersLost.length} worker(s) lost` +
              (result.imagesRemoved === null ? '' : `, removed ${result.imagesRemoved} image(s)`),
          )
      } finally {
        await opened.close()
      }
    })
}

const loadHost = () => import('./host-tools.ts')

function configOf(cmd: Command): ProctorConfig {
  let root = cmd
  while (root.parent) root = root.parent
  return loadConfigFile(root.opts<{ config: string }>().config)
}

function formatHost(report: HostReport): string {
  const lines = [
    `capabilities: ${report.capabilities.join(', ') || '(none)'}`,
    `gVisor: ${report.gvisor ? 'yes (runsc registered)' : 'no'}; GPUs: ${report.gpus ? 'declared' : 'none declared'}`,
    `runtimes: ${report.runtimes.join(', ') || '(engine unreachable)'}`,
  ]
  for (const disk of report.disks) {
    lines.push(`disk ${disk.path}: ${gib(disk.freeBytes)} free of ${gib(disk.totalBytes)}`)
  }
  lines.push(
    report.takesJobs
      ? 'takes jobs: yes'
      : 'takes jobs: NO (low on disk; run `proctor sweep --prune-images`)',
  )
  return lines.join('\n')
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`
}
