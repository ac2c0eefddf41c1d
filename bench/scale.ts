/**
 * Scale benchmark on PostgreSQL: 1, 2 and 4 worker processes, each with 2 slots, serving
 * synthetic jobs that sleep 2 s. What runs is proctor's real queue (claim with
 * `for update skip locked`, lease, complete), worker loop and LISTEN/NOTIFY wake-up; the
 * job's work is a sleep, not a build or a container (those are measured by the drills), so
 * the figures are the scheduler's overhead, not Docker's.
 *
 *   bash scripts/postgres.sh start
 *   PROCTOR_TEST_POSTGRES_URL=$(bash scripts/postgres.sh url) node --import tsx bench/scale.ts
 *
 * - throughput: workers × slots × 5 jobs enqueued at once; jobs per minute as a ratio to the
 *   ideal (workers × slots × 60 s ÷ job time). Goal: ≥ 90 %.
 * - queued-to-claim: 100 jobs enqueued one at a time while every slot is idle (so no job
 *   waits for a slot); time from the start of the enqueuing transaction to the claim (so it
 *   includes the enqueue's own commit). Goal: p99 < 100 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { createInterface } from 'node:readline'

import { systemClock } from '../src/domain/clock.ts'
import { JobQueue } from '../src/queue/job-queue.ts'
import type { Store } from '../src/store/database.ts'
import { createPostgresTestStore, postgresTestStoreUrl } from '../test/support/postgres.ts'

const SLOTS = 2
const JOB_MS = 2_000
const ROUNDS = 5
const LATENCY_SAMPLES = 100
const ROOT = path.resolve(import.meta.dirname, '..')

interface Figures {
  workers: number
  jobs: number
  seconds: number
  perMinute: number
  ideal: number
  ratio: number
  claimP50: number
  claimP99: number
  claimMax: number
}

async function runConfig(workers: number): Promise<Figures> {
  const store = await createPostgresTestStore(`bench scale ${workers}`)
  const url = postgresTestStoreUrl(store)
  const children = await Promise.all(Array.from({ length: workers }, () => startWorker(url)))
  try {
    const queue = new JobQueue(store, systemClock)

    // Throughput: everything at once, the clock runs until the last job is done.
    const jobs = workers * SLOTS * ROUNDS
    const started = performance.now()
    await store.db.transaction().execute(async (trx) => {
      for (let i = 0; i < jobs; i++) {
        await queue.enqueue(trx, { kind: 'intake', queue: 'bench', maxAttempts: 1 })
      }
    })
    await until(async () => (await countDone(store)) === jobs)
    const seconds = (performance.now() - started) / 1000
    const perMinute = (jobs / seconds) * 60
    const ideal = (workers * SLOTS * 60_000) / JOB_MS

    // Latency: one job at a time into idle slots.
    const samples: number[] = []
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      await until(async () => (await countRunning(store)) === 0)
      const enqueuedAt = Date.now()
      const id = await queue.enqueue(store.db, { kind: 'intake', queue: 'bench', maxAttempts: 1 })
      const committedAt = Date.now()
      let claimedAt: number | null = null
      await until(async () => {
        const row = await store.db
          .selectFrom('jobs')
          .select('claimed_at')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
        claimedAt = row.claimed_at ? Date.parse(row.claimed_at) : null
        return claimedAt !== null
      }, 2)
      samples.push(Math.max(0, (claimedAt ?? committedAt) - enqueuedAt))
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    samples.sort((a, b) => a - b)
    return {
      workers,
      jobs,
      seconds: round(seconds),
      perMinute: round(perMinute),
      ideal,
      ratio: round(perMinute / ideal, 3),
      claimP50: percentile(samples, 0.5),
      claimP99: percentile(samples, 0.99),
      claimMax: samples.at(-1) ?? 0,
    }
  } finally {
    for (const child of children) child.kill('SIGTERM')
    await Promise.all(children.map((c) => new Promise((resolve) => c.once('exit', resolve))))
    await store.close()
  }
}

function startWorker(url: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'bench/support/sleep-worker.ts'),
      url,
      String(SLOTS),
      String(JOB_MS),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      if (line === 'ready') resolve(child)
    })
    child.once('exit', (code) => reject(new Error(`bench worker exited ${code}`)))
  })
}

async function countDone(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', '=', 'done')
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

async function countRunning(store: Store): Promise<number> {
  const row = await store.db
    .selectFrom('jobs')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('state', 'in', ['running', 'waiting'])
    .executeTakeFirstOrThrow()
  return Number(row.n)
}

async function until(
  check: () => Promise<boolean>,
  everyMs = 20,
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('benchmark step timed out')
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0
}

function round(value: number, digits = 1): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

const results: Figures[] = []
for (const workers of [1, 2, 4]) results.push(await runConfig(workers))
console.log(
  `scale benchmark: PostgreSQL, ${SLOTS} slots per worker process, synthetic jobs of ${JOB_MS} ms`,
)
console.log('workers  jobs  seconds  jobs/min  ideal  ratio  claim p50  claim p99  claim max')
for (const r of results) {
  console.log(
    [
      String(r.workers).padStart(7),
      String(r.jobs).padStart(5),
      String(r.seconds).padStart(8),
      String(r.perMinute).padStart(9),
      String(r.ideal).padStart(6),
      `${Math.round(r.ratio * 1000) / 10}%`.padStart(6),
      `${r.claimP50} ms`.padStart(10),
      `${r.claimP99} ms`.padStart(10),
      `${r.claimMax} ms`.padStart(10),
    ].join(' '),
  )
}
const ok = results.every((r) => r.ratio >= 0.9 && r.claimP99 < 100)
console.log(ok ? 'goals met: ≥ 90 % of ideal, queued-to-claim p99 < 100 ms' : 'goals NOT met')
