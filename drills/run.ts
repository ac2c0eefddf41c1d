import { parseArgs } from 'node:util'

import { runApiKillDrill } from './api-kill.ts'
import { runDatabaseOutageDrill } from './database-outage.ts'
import { runDockerRestartDrill } from './docker-restart.ts'
import { formatResult, type DrillResult } from './support/checks.ts'
import { runWorkerKillDrill } from './worker-kill.ts'

/**
 * Runs the failure drills against real processes, PostgreSQL and the Docker Engine, and
 * prints each one's checks. Needs scripts/setup.sh (services, base images) first.
 *
 *   node --import tsx drills/run.ts --count 10
 *   node --import tsx drills/run.ts --count 3 --only worker-kill,api-kill
 */
export const DRILLS: Record<string, (count: number) => Promise<DrillResult>> = {
  'worker-kill': runWorkerKillDrill,
  'api-kill': runApiKillDrill,
  'database-outage': runDatabaseOutageDrill,
  'docker-restart': runDockerRestartDrill,
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { count: { type: 'string', default: '10' }, only: { type: 'string' } },
  })
  const count = Number(values.count)
  const names = values.only ? values.only.split(',') : Object.keys(DRILLS)
  let failed = 0
  for (const name of names) {
    const drill = DRILLS[name]
    if (!drill) throw new Error(`no drill ${name}; drills: ${Object.keys(DRILLS).join(', ')}`)
    let result: DrillResult
    try {
      result = await drill(count)
    } catch (err) {
      result = {
        drill: name,
        count,
        seconds: 0,
        ok: false,
        checks: [
          {
            name: 'the drill ran to the end',
            ok: false,
            detail: err instanceof Error ? err.message : String(err),
          },
        ],
        facts: {},
      }
    }
    if (!result.ok) failed++
    console.log(formatResult(result))
  }
  console.log(`${names.length - failed} passed, ${failed} failed`)
  process.exitCode = failed > 0 ? 1 : 0
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
