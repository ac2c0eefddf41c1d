import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'

import { check, evaluationChecks, verdict, type DrillResult } from './support/checks.ts'
import { DrillEnv, ROOT, waitFor } from './support/drill-env.ts'
import { outcomes } from './worker-kill.ts'

const run = promisify(execFile)
const RUN_DIR = path.join(process.env.PROCTOR_HOME ?? path.join(ROOT, '.proctor'), 'run')

/**
 * Drill 4: for each of `count` submissions, the Docker Engine is restarted (stopped through
 * its pid file, started again by scripts/services.sh) once the submission's participant
 * container is seen running. The phase fails as proctor's own problem and is retried: the
 * submission still ends scored, with more than one attempt, and nothing is left behind.
 */
export async function runDockerRestartDrill(count: number): Promise<DrillResult> {
  const started = Date.now()
  const baseline = await DrillEnv.containerIds()
  const env = await DrillEnv.create('docker-restart', {
    apis: 1,
    workers: 2,
    predictSeconds: 5,
    buildSeconds: 1,
  })
  try {
    await env.startAll()
    const expected = new Map<number, number>()
    const restarts: string[] = []
    for (let i = 0; i < count; i++) {
      const score = Math.round((0.3 + i * 0.04) * 100) / 100
      const id = await env.submit(await env.pushTag(score))
      expected.set(id, score)
      await env.waitForStage(id, 'predict')
      await waitFor(
        `the predict container of submission ${id}`,
        60_000,
        async () => {
          const { stdout } = await run('docker', [
            'ps',
            '-q',
            '--filter',
            `label=proctor.submission=${id}`,
            '--filter',
            'status=running',
          ])
          return stdout.trim() !== ''
        },
        20,
      )
      const ms = await restartDocker()
      restarts.push(`#${id}: engine restarted in ${ms} ms during predict`)
    }
    await env.waitForTerminal([...expected.keys()], 300_000)
    const checks = await evaluationChecks(env, expected, baseline)
    const retried = await env.store.db
      .selectFrom('jobs')
      .select(['submission_id', 'attempt'])
      .where('submission_id', 'in', [...expected.keys()])
      .execute()
    checks.unshift(
      check(
        'each interrupted evaluation was retried',
        retried.every((j) => j.attempt >= 2),
        `attempts: ${retried.map((j) => j.attempt).join(',')}`,
      ),
    )
    return verdict('docker-restart', count, started, checks, {
      restarts,
      outcomes: await outcomes(env, [...expected.keys()]),
    })
  } finally {
    await env.close()
  }
}

/** Stops dockerd by its pid file and starts it again as scripts/services.sh does. */
async function restartDocker(): Promise<number> {
  const began = Date.now()
  const pid = Number(readFileSync(path.join(RUN_DIR, 'dockerd.pid'), 'utf8').trim())
  process.kill(pid, 'SIGTERM')
  await waitFor('dockerd to exit', 60_000, () => Promise.resolve(!isAlive(pid)), 50)
  await run('bash', [path.join(ROOT, 'scripts/services.sh'), 'start'])
  return Date.now() - began
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
