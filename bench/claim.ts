/**
 * Claim benchmark on embedded SQLite (a real file, WAL, synchronous=FULL as in production):
 *
 *   node --import tsx bench/claim.ts
 *
 * Builds 100,000 waiting jobs across 100 challenge queues and 1,000 participants (10 per
 * challenge, 100 jobs each, enqueued participant by participant in blocks of 10k so arrival
 * order would be unfair), then measures claim latency with 1, 4 and 16 concurrent async
 * claimers in this one process (each claim followed by a complete), beside a bare indexed
 * SELECT and a bare one-row UPDATE transaction on the same table, as ratios. Also: the
 * fairness spread (max/min jobs served per participant over the whole run, during which
 * every participant has work), and RSS with 10k and with 100k jobs queued.
 *
 * Goals: claim p99 < 5 ms with 4 claimers, RSS flat as the queue grows, spread < 1.5.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

import { sql } from 'kysely'

import { systemClock } from '../src/domain/clock.ts'
import { JobQueue } from '../src/queue/job-queue.ts'
import { migrate, openStore, type Store } from '../src/store/database.ts'

const CHALLENGES = 100
const PARTICIPANTS = 1_000
const JOBS_PER_PARTICIPANT = 100
const BLOCKS = 10
const CLAIMS = { 1: 4_000, 4: 8_000, 16: 8_000 } as const
const BARE_SAMPLES = 4_000
const LEASE_MS = 60_000

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

interface Stats {
  p50: number
  p99: number
  mean: number
  n: number
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0
  return {
    p50: at(0.5),
    p99: at(0.99),
    mean: sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length),
    n: sorted.length,
  }
}

function rssMb(): number {
  gc()
  return process.memoryUsage().rss / 1024 / 1024
}

const ms = (value: number) => `${value.toFixed(3)} ms`

function queueOf(participant: number): string {
  return `c${String(participant % CHALLENGES).padStart(3, '0')}`
}

function keyOf(participant: number): string {
  return `p${String(participant).padStart(4, '0')}`
}

/** Enqueues one block: every participant's next jobs, participant by participant. */
async function enqueueBlock(
  store: Store,
  queue: JobQueue,
  perParticipant: number,
): Promise<number> {
  const started = performance.now()
  for (let first = 0; first < PARTICIPANTS; first += 100) {
    await store.db.transaction().execute(async (trx) => {
      for (let p = first; p < first + 100; p++) {
        for (let j = 0; j < perParticipant; j++) {
          await queue.enqueue(trx, {
            kind: 'evaluate',
            queue: queueOf(p),
            fairnessKey: keyOf(p),
            maxAttempts: 3,
          })
        }
      }
    })
  }
  return performance.now() - started
}

/**
 * PROCTOR_BENCH_PRAGMAS=`synchronous=NORMAL,wal_autocheckpoint=0` overrides the store's
 * pragmas, to see what durability settings cost. Results with it are not production's.
 */
const PRAGMAS = (process.env.PROCTOR_BENCH_PRAGMAS ?? '').split(',').filter((p) => p.includes('='))

async function openBenchStore(
  dir: string,
  name: string,
): Promise<{ store: Store; queue: JobQueue }> {
  const store = openStore(`sqlite:${path.join(dir, name)}`)
  await migrate(store)
  for (const pragma of PRAGMAS) await sql.raw(`pragma ${pragma}`).execute(store.db)
  return { store, queue: new JobQueue(store, systemClock) }
}

/** `claimers` async loops sharing `total` claims; each claim is timed, then completed. */
async function runClaimers(
  store: Store,
  queue: JobQueue,
  claimers: number,
  total: number,
  served: Map<string, number>,
): Promise<{ latency: Stats; seconds: number; cpuMsPerJob: number }> {
  const samples: number[] = []
  let left = total
  const started = performance.now()
  const cpuBefore = process.cpuUsage()

  async function claimer(index: number): Promise<void> {
    while (left > 0) {
      left--
      const t0 = performance.now()
      const job = await queue.claim({
        workerId: `bench-${claimers}-${index}`,
        queues: ['*'],
        capabilities: [],
        kinds: ['evaluate'],
        leaseMs: LEASE_MS,
      })
      samples.push(performance.now() - t0)
      if (!job) throw new Error('the queue ran dry; raise JOBS_PER_PARTICIPANT')
      const key = job.fairnessKey ?? '?'
      served.set(key, (served.get(key) ?? 0) + 1)
      await queue.withLease(job, (trx) => queue.complete(trx, job))
    }
  }

  await Promise.all(Array.from({ length: claimers }, (_, i) => claimer(i)))
  const cpu = process.cpuUsage(cpuBefore)
  return {
    latency: stats(samples),
    seconds: (performance.now() - started) / 1000,
    cpuMsPerJob: (cpu.user + cpu.system) / 1000 / total,
  }
}

/** The floor: the claim's index lookup alone, and a one-row write transaction alone. */
async function bareCosts(store: Store): Promise<{ select: Stats; update: Stats }> {
  const select: number[] = []
  const update: number[] = []
  for (let i = 0; i < BARE_SAMPLES; i++) {
    const t0 = performance.now()
    await store.db
      .selectFrom('jobs')
      .select('id')
      .where('queue', '=', queueOf(i))
      .where('state', '=', 'waiting')
      .orderBy('priority', 'desc')
      .orderBy('fair_seq')
      .orderBy('id')
      .limit(1)
      .executeTakeFirst()
    select.push(performance.now() - t0)
  }
  for (let i = 0; i < BARE_SAMPLES / 4; i++) {
    const t0 = performance.now()
    await store.db
      .transaction()
      .execute((trx) =>
        trx
          .updateTable('job_queues')
          .set({ created_at: new Date().toISOString() })
          .where('queue', '=', queueOf(i))
          .execute(),
      )
    update.push(performance.now() - t0)
  }
  return { select: stats(select), update: stats(update) }
}

function spreadOf(served: Map<string, number>): { min: number; max: number; spread: number } {
  const counts = Array.from({ length: PARTICIPANTS }, (_, p) => served.get(keyOf(p)) ?? 0)
  const min = Math.min(...counts)
  const max = Math.max(...counts)
  return { min, max, spread: min === 0 ? Number.POSITIVE_INFINITY : max / min }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'proctor-bench-'))
  const out: string[] = []
  const print = (line = '') => {
    out.push(line)
    console.log(line)
  }
  try {
    print(
      `claim benchmark: node ${process.version}, ${cpus().length} CPUs, load average ${loadavg()[0]?.toFixed(1)}, SQLite file in ${dir}`,
    )
    print(
      `pragmas: ${PRAGMAS.length > 0 ? `OVERRIDDEN ${PRAGMAS.join(', ')} (not production)` : 'as in production (WAL, synchronous=FULL)'}`,
    )
    const rssStart = rssMb()

    // 10k jobs queued.
    const small = await openBenchStore(dir, 'queue-10k.db')
    const smallEnqueueMs = await enqueueBlock(
      small.store,
      small.queue,
      JOBS_PER_PARTICIPANT / BLOCKS,
    )
    // The first claims in the process warm up the JIT; measure 10k after a warm-up run.
    await runClaimers(small.store, small.queue, 4, 1_000, new Map())
    const small4 = await runClaimers(small.store, small.queue, 4, 2_000, new Map())
    const rss10k = rssMb()
    await small.store.close()

    // 100k jobs queued.
    const big = await openBenchStore(dir, 'queue-100k.db')
    let bigEnqueueMs = 0
    for (let block = 0; block < BLOCKS; block++) {
      bigEnqueueMs += await enqueueBlock(big.store, big.queue, JOBS_PER_PARTICIPANT / BLOCKS)
    }
    const queued = await big.store.db
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('state', '=', 'waiting')
      .executeTakeFirstOrThrow()
    const rss100kQueued = rssMb()

    const bare = await bareCosts(big.store)
    const statusMs: number[] = []
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now()
      await big.queue.depth()
      statusMs.push(performance.now() - t0)
    }
    const depthCost = stats(statusMs)
    const served = new Map<string, number>()
    const runs = []
    for (const claimers of [1, 4, 16] as const) {
      runs.push({
        claimers,
        ...(await runClaimers(big.store, big.queue, claimers, CLAIMS[claimers], served)),
      })
    }
    const rss100k = rssMb()
    const fairness = spreadOf(served)
    const perQueue = perQueueSpread(served)
    await big.store.close()

    print()
    print(
      `enqueue: 10k jobs in ${(smallEnqueueMs / 1000).toFixed(1)} s; 100k jobs in ${(bigEnqueueMs / 1000).toFixed(1)} s ` +
        `(${Math.round(100_000 / (bigEnqueueMs / 1000))} jobs/s, 100 per transaction); waiting at start: ${Number(queued.n)}`,
    )
    print()
    print('bare costs on the 100k table (sequential):')
    print(
      `  indexed SELECT (the claim's lookup)   p50 ${ms(bare.select.p50)}  p99 ${ms(bare.select.p99)}`,
    )
    print(
      `  one-row UPDATE transaction (commit)   p50 ${ms(bare.update.p50)}  p99 ${ms(bare.update.p99)}`,
    )
    print(
      `  depth() of all 100 queues             p50 ${ms(depthCost.p50)}  max ${ms(depthCost.p99)}`,
    )
    print()
    print('claim latency, 100k queued, each claim followed by complete (1 process, 1 connection):')
    print(
      '  claimers  claims   p50        p99        claims/s  CPU/job   p50/SELECT  p99/SELECT  p50/UPDATE-txn',
    )
    for (const run of runs) {
      print(
        `  ${String(run.claimers).padStart(8)}  ${String(run.latency.n).padStart(6)}   ${ms(run.latency.p50).padEnd(10)} ` +
          `${ms(run.latency.p99).padEnd(10)} ${String(Math.round(run.latency.n / run.seconds)).padStart(8)}  ` +
          `${ms(run.cpuMsPerJob).padStart(8)} ` +
          `${(run.latency.p50 / bare.select.p50).toFixed(1).padStart(9)}x ${(run.latency.p99 / bare.select.p99).toFixed(1).padStart(10)}x ` +
          `${(run.latency.p50 / bare.update.p50).toFixed(2).padStart(12)}x`,
      )
    }
    print(
      `  (10k queued, 4 claimers: p50 ${ms(small4.latency.p50)}  p99 ${ms(small4.latency.p99)})`,
    )
    print()
    print(
      `fairness over all ${runs.reduce((a, r) => a + r.latency.n, 0)} claims (every participant had work throughout):`,
    )
    print(
      `  served per participant: min ${fairness.min}, max ${fairness.max}, spread max/min ${fairness.spread.toFixed(2)}`,
    )
    print(`  inside each queue: worst max−min ${perQueue.worstGap} job(s) between its participants`)
    print()
    print(
      `RSS: start ${rssStart.toFixed(0)} MB; 10k queued + 3k claims ${rss10k.toFixed(0)} MB; ` +
        `100k queued ${rss100kQueued.toFixed(0)} MB; after 20k claims ${rss100k.toFixed(0)} MB`,
    )
    const p99at4 = runs.find((r) => r.claimers === 4)?.latency.p99 ?? Number.NaN
    print()
    print(
      `goals: claim p99 < 5 ms with 4 claimers: ${p99at4 < 5 ? 'met' : 'NOT met'} (${ms(p99at4)}); ` +
        `spread < 1.5: ${fairness.spread < 1.5 ? 'met' : 'NOT met'} (${fairness.spread.toFixed(2)}); ` +
        `RSS growth 10k→100k: ${(rss100k - rss10k).toFixed(0)} MB`,
    )
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Per queue, the largest difference in jobs served between two of its participants. */
function perQueueSpread(served: Map<string, number>): { worstGap: number } {
  let worstGap = 0
  for (let c = 0; c < CHALLENGES; c++) {
    const counts: number[] = []
    for (let p = c; p < PARTICIPANTS; p += CHALLENGES) counts.push(served.get(keyOf(p)) ?? 0)
    worstGap = Math.max(worstGap, Math.max(...counts) - Math.min(...counts))
  }
  return { worstGap }
}

await main()
