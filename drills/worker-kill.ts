import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

import { DrillEnv, waitFor } from './support/drill-env.ts'
import { check, evaluationChecks, verdict, type DrillResult } from './support/checks.ts'

const run = promisify(execFile)

/**
 * Drill 1: two worker processes (and two API processes, both dispatching the outbox) on
 * PostgreSQL. For each of `count` submissions, the worker holding its job is killed with
 * SIGKILL once the job is seen in its build (odd rounds: a build step's container running)
 * or its predict phase (even rounds: the participant's container running), then started
 * again. Leases are 3 s, so the reaper puts the job back within seconds.
 */
export async function runWorkerKillDrill(count: number): Promise<DrillResult> {
  const started = Date.now()
  const baseline = await DrillEnv.containerIds()
  const env = await DrillEnv.create('worker-kill', { apis: 2, workers: 2, leaseSeconds: 3 })
  try {
    await env.startAll()
    const expected = new Map<number, number>()
    const kills: string[] = []
    for (let round = 0; round < count; round++) {
      const stage = round % 2 === 0 ? 'build' : 'predict'
      const score = Math.round((0.1 + round * 0.07) * 100) / 100
      const pushed = await env.pushTag(score)
      const id = await env.submit(pushed)
      expected.set(id, score)

      const holder = await env.waitForStage(id, stage)
      await waitForContainer(id, stage, baseline)
      const name = env.processOfWorker(holder.workerId)
      if (!name)
        throw new Error(`no drill process holds submission ${id} (worker ${holder.workerId})`)
      const pid = env.kill9(name)
      kills.push(`#${id} ${stage} attempt ${holder.attempt}: kill -9 ${name} (pid ${pid})`)
      env.restart(name)
    }

    await env.waitForTerminal([...expected.keys()])
    const checks = await evaluationChecks(env, expected, baseline)
    const lost = await env.store.db
      .selectFrom('workers')
      .select('id')
      .where('state', '=', 'lost')
      .execute()
    const alive = [...env.processes.values()].filter((h) => h.child.exitCode === null).length
    checks.push(
      check(
        'the killed workers were replaced and the rest kept running',
        alive === 4,
        `${alive} processes alive`,
      ),
    )
    return verdict('worker-kill', count, started, checks, {
      kills,
      outcomes: await outcomes(env, [...expected.keys()]),
      workersMarkedLost: lost.length,
    })
  } finally {
    await env.close()
  }
}

/** The kill comes once a container of this stage is seen running, never after a sleep. */
async function waitForContainer(
  submissionId: number,
  stage: string,
  baseline: ReadonlySet<string>,
): Promise<void> {
  await waitFor(
    `a running ${stage} container for submission ${submissionId}`,
    60_000,
    async () => {
      if (stage === 'predict') {
        const { stdout } = await run('docker', [
          'ps',
          '-q',
          '--filter',
          `label=proctor.submission=${submissionId}`,
          '--filter',
          'status=running',
        ])
        return stdout.trim() !== ''
      }
      // A classic build runs each RUN step in an intermediate container without labels.
      const { stdout } = await run('docker', [
        'ps',
        '-q',
        '--no-trunc',
        '--filter',
        'status=running',
      ])
      return stdout.split('\n').some((id) => id !== '' && !baseline.has(id))
    },
    20,
  )
}

export async function outcomes(env: DrillEnv, ids: readonly number[]): Promise<string[]> {
  const rows = await env.store.db
    .selectFrom('submissions as s')
    .innerJoin('jobs as j', 'j.submission_id', 's.id')
    .select(['s.id', 's.state', 's.score', 's.reason_code', 'j.attempt'])
    .where('s.id', 'in', [...ids])
    .where('j.kind', '=', 'evaluate')
    .orderBy('s.id')
    .execute()
  return rows.map(
    (r) =>
      `#${r.id} ${r.state}${r.score !== null ? ` ${r.score}` : ''}${r.reason_code ? ` (${r.reason_code})` : ''} after ${r.attempt} attempt(s)`,
  )
}
