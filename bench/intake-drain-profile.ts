/**
 * Profiles the intake drain alone: `node --cpu-prof --import tsx bench/intake-drain-profile.ts`.
 * 5 repositories × 24 tags on the git daemon, delivered as hooks, drained by RUNNERS
 * concurrent runners; prints submissions/s and where the wall time went.
 */
import Fastify from 'fastify'

import { runIntakeJob } from '../src/intake/intake-job.ts'
import { hookRoutes } from '../src/intake/hook-routes.ts'
import {
  createBenchContext,
  GITLAB_TOKEN,
  interleave,
  pushProject,
  removeProject,
  tagPushBody,
} from './intake-setup.ts'

const RUNNERS = Number(process.env.RUNNERS ?? 8)
const bench = await createBenchContext()
const app = Fastify({ logger: false })
await app.register(hookRoutes, { ctx: bench.ctx })
const namespace = `prof-${Date.now().toString(36)}`
const projects = Array.from({ length: 5 }, (_, i) => `${namespace}-${i}/flower-classification`)
const pushed = interleave(await Promise.all(projects.map((p) => pushProject(p, 24))))
for (const push of pushed) {
  await app.inject({
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
}
const ctx = bench.ctx
const timing = { claim: 0, run: 0 }
const started = performance.now()
await Promise.all(
  Array.from({ length: RUNNERS }, async (_, r) => {
    for (;;) {
      const t0 = performance.now()
      const job = await ctx.queue.claim({
        workerId: `p-${r}`,
        queues: ['intake'],
        capabilities: [],
        kinds: ['intake'],
        leaseMs: 60_000,
      })
      const t1 = performance.now()
      timing.claim += t1 - t0
      if (!job) return
      await runIntakeJob(ctx, job)
      timing.run += performance.now() - t1
    }
  }),
)
const seconds = (performance.now() - started) / 1000
console.log(
  `${pushed.length} pushes, ${RUNNERS} runners: ${(pushed.length / seconds).toFixed(1)} submissions/s; per job: claim ${(timing.claim / pushed.length).toFixed(1)} ms, run ${(timing.run / pushed.length).toFixed(1)} ms (wall, summed over runners)`,
)
await app.close()
await bench.close()
await Promise.all(projects.map((p) => removeProject(p)))
