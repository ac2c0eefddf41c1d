/**
 * Intake benchmark: how fast hooks are taken in, and how fast intake jobs turn them into
 * submissions.
 *
 *   node --import tsx bench/intake-hooks.ts            # needs the git daemon (scripts/services.sh)
 *   BENCH_SECONDS=1 node --import tsx bench/intake-hooks.ts   # shorter steps
 *
 * 1. Saturated rate of POST /hooks/gitlab (every request a new tag, so each one stores an
 *    event and an intake job) and of a /noop route on the same server, raising the number of
 *    concurrent keep-alive clients until the rate stops rising; and their ratio.
 * 2. p50/p99 latency of the hook route under open-loop load of 1,000 hooks/s for ~10 s:
 *    requests go out on a fixed schedule whether or not earlier ones have answered, and
 *    latency is measured from the scheduled time, so queueing shows.
 * 3. Intake drain: 120 tag pushes to 5 real repositories on the git daemon, delivered as
 *    hooks, then drained by concurrent intake runners (mirror fetch, crowdai.json read,
 *    checks, quota charge, evaluate job); submissions per second.
 *
 * The server runs in its own process so the load generator does not share its event loop.
 * Goals: hook rate >= 1/3 of no-op, p99 < 10 ms at 1,000/s, intake >= 100 submissions/s.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'

import Fastify from 'fastify'

import { InfrastructureError } from '../src/domain/errors.ts'
import { runIntakeJob } from '../src/intake/intake-job.ts'
import { hookRoutes } from '../src/intake/hook-routes.ts'
import {
  createBenchContext,
  GITLAB_TOKEN,
  interleave,
  probeCommitMs,
  pushProject,
  removeProject,
  tagPushBody,
  type PushedTag,
} from './intake-setup.ts'

const STEP_SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const OPEN_LOOP_RATE = 1000
const OPEN_LOOP_SECONDS = 10

/** The server side: the hook plugin and a no-op route on one Fastify instance. */
async function serve(): Promise<void> {
  const bench = await createBenchContext()
  const app = Fastify({ logger: false })
  await app.register(hookRoutes, { ctx: bench.ctx })
  app.post('/noop', (_request, reply) => {
    void reply.code(204).send()
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  process.send?.({ port: typeof address === 'object' && address ? address.port : 0 })
  process.on('message', (message: string) => {
    if (message === 'cpu') {
      const { user, system } = process.cpuUsage()
      process.send?.({ cpuMicros: user + system })
      return
    }
    if (message !== 'stop') return
    void (async () => {
      const jobs = await bench.ctx.store.db
        .selectFrom('jobs')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow()
      await app.close()
      await bench.close()
      process.send?.({ stopped: true, jobs: Number(jobs.n) })
      process.disconnect()
    })()
  })
}

interface Target {
  port: number
  agent: http.Agent
}

let tagCounter = 0

function hookBody(): string {
  tagCounter++
  return tagPushBody(
    7,
    'bench/flower-classification',
    `t${tagCounter}`,
    (tagCounter.toString(16) + 'a'.repeat(40)).slice(0, 40),
  )
}

let requestCount = 0

function request(target: Target, path: string, body: string): Promise<number> {
  requestCount++
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: target.port,
        method: 'POST',
        path,
        agent: target.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-gitlab-token': GITLAB_TOKEN,
        },
      },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** Closed loop: `clients` loops each sending the next request when the last answered. */
async function saturate(
  port: number,
  path: string,
  clients: number,
): Promise<{ rate: number; errors: number }> {
  const target = { port, agent: new http.Agent({ keepAlive: true, maxSockets: clients }) }
  const deadline = performance.now() + STEP_SECONDS * 1000
  let done = 0
  let errors = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        const status = await request(target, path, path === '/noop' ? '{}' : hookBody())
        if (status >= 300) errors++
        done++
      }
    }),
  )
  const elapsed = (performance.now() - started) / 1000
  target.agent.destroy()
  return { rate: done / elapsed, errors }
}

async function saturatedRate(
  port: number,
  path: string,
): Promise<{ rate: number; clients: number; steps: string[] }> {
  let best = { rate: 0, clients: 0 }
  let flat = 0
  const steps: string[] = []
  for (const clients of [1, 2, 4, 8, 16, 32, 64, 128]) {
    const { rate, errors } = await saturate(port, path, clients)
    steps.push(`${clients}:${Math.round(rate)}${errors ? `(${errors} errors)` : ''}`)
    if (rate > best.rate * 1.05) {
      best = { rate, clients }
      flat = 0
    } else if (++flat >= 2) break
  }
  return { ...best, steps }
}

async function openLoop(
  port: number,
  path: string,
): Promise<{ p50: number; p99: number; max: number; sent: number; errors: number }> {
  const target = { port, agent: new http.Agent({ keepAlive: true, maxSockets: 256 }) }
  const total = OPEN_LOOP_RATE * OPEN_LOOP_SECONDS
  const interval = 1000 / OPEN_LOOP_RATE
  const latencies: number[] = []
  const pending: Promise<void>[] = []
  let errors = 0
  const start = performance.now() + 50
  let next = 0

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      while (next < total && start + next * interval <= now) {
        const scheduled = start + next * interval
        next++
        pending.push(
          request(target, path, path === '/noop' ? '{}' : hookBody()).then(
            (status) => {
              if (status >= 300) errors++
              latencies.push(performance.now() - scheduled)
            },
            () => {
              errors++
            },
          ),
        )
      }
      // A 1 ms timer, not setImmediate: a spinning client would take a core from the server.
      if (next < total) setTimeout(tick, 1)
      else resolve()
    }
    tick()
  })
  await Promise.all(pending)
  target.agent.destroy()
  latencies.sort((a, b) => a - b)
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0
  return { p50: at(0.5), p99: at(0.99), max: latencies.at(-1) ?? 0, sent: total, errors }
}

async function intakeDrain(runners: number): Promise<{
  pushes: number
  seconds: number
  rate: number
  states: Record<string, number>
  retries: number
}> {
  const bench = await createBenchContext()
  const app = Fastify({ logger: false })
  await app.register(hookRoutes, { ctx: bench.ctx })
  const namespace = `bench-${Date.now().toString(36)}`
  const projects = Array.from({ length: 5 }, (_, i) => `${namespace}-${i}/flower-classification`)
  const pushed: PushedTag[] = interleave(await Promise.all(projects.map((p) => pushProject(p, 24))))

  for (const [i, push] of pushed.entries()) {
    const res = await app.inject({
      method: 'POST',
      url: '/hooks/gitlab',
      headers: { 'content-type': 'application/json', 'x-gitlab-token': GITLAB_TOKEN },
      payload: tagPushBody(
        1000 + projects.indexOf(push.projectPath),
        push.projectPath,
        push.tag,
        push.commit,
      ),
    })
    if (res.statusCode !== 202)
      throw new Error(`delivery ${i} answered ${res.statusCode}: ${res.body}`)
  }

  const ctx = bench.ctx
  let retries = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: runners }, async (_, r) => {
      for (;;) {
        const job = await ctx.queue.claim({
          workerId: `bench-${r}`,
          queues: ['intake'],
          capabilities: [],
          kinds: ['intake'],
          leaseMs: 60_000,
        })
        if (!job) return
        try {
          await runIntakeJob(ctx, job)
        } catch (err) {
          // As the worker does: an infrastructure error puts the job back to run again.
          if (!(err instanceof InfrastructureError)) throw err
          retries++
          await ctx.queue.withLease(job, (trx) => ctx.queue.retry(trx, job, 0, err.message))
        }
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const rows = await ctx.store.db.selectFrom('submissions').select(['state']).execute()
  const states: Record<string, number> = {}
  for (const row of rows) states[row.state] = (states[row.state] ?? 0) + 1

  await app.close()
  await bench.close()
  await Promise.all(projects.map((p) => removeProject(p)))
  return { pushes: pushed.length, seconds, rate: rows.length / seconds, states, retries }
}

/** The server's CPU time so far (µs): CPU per request is the cost measure load noise spares. */
function serverCpu(worker: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    const listener = (m: { cpuMicros?: number }) => {
      if (m.cpuMicros === undefined) return
      worker.off('message', listener)
      resolve(m.cpuMicros)
    }
    worker.on('message', listener)
    worker.send('cpu')
  })
}

async function measured<T extends { rate: number }>(
  worker: ChildProcess,
  run: () => Promise<T>,
  requests: () => number,
): Promise<T & { cpuPerRequestMs: number }> {
  const before = await serverCpu(worker)
  const startCount = requests()
  const result = await run()
  const cpu = (await serverCpu(worker)) - before
  return { ...result, cpuPerRequestMs: cpu / 1000 / Math.max(1, requests() - startCount) }
}

async function main(): Promise<void> {
  const worker = fork(fileURLToPath(import.meta.url), ['--serve'], {
    execArgv: ['--import', 'tsx'],
  })
  const port = await new Promise<number>((resolve) =>
    worker.once('message', (m: { port: number }) => resolve(m.port)),
  )
  console.log(`server on 127.0.0.1:${port} (own process); ${STEP_SECONDS} s per concurrency step`)

  const probeDir = await mkdtemp(path.join(os.tmpdir(), 'proctor-probe-'))
  const commitMs = await probeCommitMs(probeDir)
  await rm(probeDir, { recursive: true, force: true })
  const load = os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')
  console.log(
    `load average ${load} on ${os.cpus().length} cores; one durable SQLite commit takes ${commitMs.toFixed(2)} ms now`,
  )
  const noop = await measured(
    worker,
    () => saturatedRate(port, '/noop'),
    () => requestCount,
  )
  console.log(
    `no-op   saturated: ${Math.round(noop.rate)} req/s at ${noop.clients} clients, server CPU ${noop.cpuPerRequestMs.toFixed(3)} ms/req  [clients:rate ${noop.steps.join(' ')}]`,
  )
  const hook = await measured(
    worker,
    () => saturatedRate(port, '/hooks/gitlab'),
    () => requestCount,
  )
  console.log(
    `hooks   saturated: ${Math.round(hook.rate)} req/s at ${hook.clients} clients, server CPU ${hook.cpuPerRequestMs.toFixed(3)} ms/req  [clients:rate ${hook.steps.join(' ')}]`,
  )
  const ratio = hook.rate / noop.rate
  const cpuRatio = noop.cpuPerRequestMs / hook.cpuPerRequestMs
  console.log(
    `ratio hooks/no-op: ${ratio.toFixed(2)} by rate, ${cpuRatio.toFixed(2)} by server CPU per request  (goal >= 0.33: ${ratio >= 1 / 3 ? 'met' : 'MISSED'})`,
  )

  const open = await measured(
    worker,
    async () => ({ rate: OPEN_LOOP_RATE, ...(await openLoop(port, '/hooks/gitlab')) }),
    () => requestCount,
  )
  console.log(
    `hooks   open loop ${OPEN_LOOP_RATE}/s for ${OPEN_LOOP_SECONDS} s: p50 ${open.p50.toFixed(2)} ms, p99 ${open.p99.toFixed(2)} ms, max ${open.max.toFixed(1)} ms, ${open.errors} errors, server CPU ${open.cpuPerRequestMs.toFixed(3)} ms/req  (goal p99 < 10 ms: ${open.p99 < 10 ? 'met' : 'MISSED'})`,
  )
  const openNoop = await openLoop(port, '/noop')
  console.log(
    `no-op   open loop ${OPEN_LOOP_RATE}/s for ${OPEN_LOOP_SECONDS} s: p50 ${openNoop.p50.toFixed(2)} ms, p99 ${openNoop.p99.toFixed(2)} ms (reference)`,
  )

  worker.send('stop')
  const stopped = await new Promise<{ jobs: number }>((resolve) =>
    worker.on('message', (m: { stopped?: boolean; jobs: number }) => {
      if (m.stopped) resolve(m)
    }),
  )
  console.log(`server stored ${stopped.jobs} intake jobs`)

  for (const runners of [1, 4, 8]) {
    const drain = await intakeDrain(runners)
    console.log(
      `intake  ${drain.pushes} pushes / 5 repos, ${runners} runner(s): ${drain.seconds.toFixed(2)} s, ${drain.rate.toFixed(1)} submissions/s ${JSON.stringify(drain.states)}, ${drain.retries} retries  (goal >= 100/s: ${drain.rate >= 100 ? 'met' : 'MISSED'})`,
    )
  }
}

// Last, so every module-level binding above is initialized before it runs.
if (process.argv.includes('--serve')) {
  await serve()
} else {
  await main()
}
