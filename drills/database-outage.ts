import { check, evaluationChecks, verdict, type DrillResult } from './support/checks.ts'
import { DrillEnv, sleep, startDrillCluster, stopDrillCluster } from './support/drill-env.ts'
import { outcomes } from './worker-kill.ts'

const OUTAGE_MS = 30_000

/**
 * Drill 3: `count` evaluations are under way (one of them seen in its predict phase) when
 * PostgreSQL is stopped (`pg_ctl stop -m fast`) for 30 s, while the forge keeps sending
 * `count` new tag pushes, one a second, retrying each until it gets a 2xx. Then the
 * database comes back. APIs and workers must wait and recover without exiting; every hook
 * answered 2xx during the outage must be stored (a 503 is the right answer); every
 * submission ends exactly once, with its score.
 */
export async function runDatabaseOutageDrill(count: number): Promise<DrillResult> {
  const started = Date.now()
  const baseline = await DrillEnv.containerIds()
  const env = await DrillEnv.create('database-outage', {
    apis: 1,
    workers: 2,
    leaseSeconds: 15,
    predictSeconds: 4,
    buildSeconds: 1,
  })
  try {
    // Every push is made first: git is not what is being drilled.
    const scores = Array.from({ length: count }, (_, i) => Math.round((0.2 + i * 0.05) * 100) / 100)
    const first = []
    for (const score of scores) first.push(await env.pushTag(score))
    const later = []
    for (let i = 0; i < count; i++) later.push(await env.pushTag(laterScore(i)))
    await env.startAll()
    const ids = await Promise.all(first.map((pushed) => env.submit(pushed)))
    const expected = new Map(ids.map((id, i) => [id, scores[i] ?? -1]))
    // Under load: strike once any of them is seen running its participant's phase.
    await env.waitForStage([...expected.keys()], 'predict')

    await stopDrillCluster()
    const outageStarted = Date.now()
    const duringOutage = new Map<number, number>()
    const acceptedDuringOutage: string[] = []
    const unsent = [...later]
    while (Date.now() - outageStarted < OUTAGE_MS) {
      const pushed = unsent[0]
      if (pushed) {
        const result = await env.postHook(env.hookBody(pushed), 0, 3_000)
        duringOutage.set(result.status, (duringOutage.get(result.status) ?? 0) + 1)
        if (result.status >= 200 && result.status < 300) {
          acceptedDuringOutage.push(pushed.tag)
          unsent.shift()
        }
      }
      await sleep(1_000)
    }
    await startDrillCluster()
    const outageSeconds = (Date.now() - outageStarted) / 1000

    // The forge retries what was refused; every push must now be accepted and evaluated.
    for (const pushed of later) {
      const id = await env.submit(pushed)
      expected.set(id, laterScore(later.indexOf(pushed)))
    }
    await env.waitForTerminal([...expected.keys()], 300_000)
    const checks = await evaluationChecks(env, expected, baseline)
    const exited = [...env.processes.values()]
      .filter((h) => h.child.exitCode !== null)
      .map((h) => h.name)
    checks.unshift(
      check(
        'no hook got a 2xx while the database was down',
        acceptedDuringOutage.length === 0,
        `answers during the outage: ${JSON.stringify(Object.fromEntries(duringOutage))}`,
      ),
      check(
        'APIs and workers waited and recovered without exiting',
        exited.length === 0,
        exited.join(', ') || 'all running',
      ),
    )
    return verdict('database-outage', count, started, checks, {
      outageSeconds,
      outcomes: await outcomes(env, [...expected.keys()]),
    })
  } finally {
    await startDrillCluster().catch(() => undefined)
    await env.close()
  }
}

function laterScore(i: number): number {
  return Math.round((0.6 + i / 100) * 100) / 100
}
