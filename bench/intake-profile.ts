/**
 * Profiles the hook path in one process: `node --cpu-prof --import tsx bench/intake-profile.ts`
 * posts N tag pushes through Fastify's inject (no sockets) at a fixed concurrency and prints
 * the rate; open the .cpuprofile in Chrome DevTools to see where the time goes.
 */
import Fastify from 'fastify'

import { hookRoutes } from '../src/intake/hook-routes.ts'
import { createBenchContext, GITLAB_TOKEN, tagPushBody } from './intake-setup.ts'

const TOTAL = Number(process.env.HOOKS ?? 5000)
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32)

const bench = await createBenchContext()
const app = Fastify({ logger: false })
await app.register(hookRoutes, { ctx: bench.ctx })
await app.ready()

let next = 0
const started = performance.now()
await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (next < TOTAL) {
      const i = next++
      const res = await app.inject({
        method: 'POST',
        url: '/hooks/gitlab',
        headers: { 'content-type': 'application/json', 'x-gitlab-token': GITLAB_TOKEN },
        payload: tagPushBody(
          7,
          'bench/flower-classification',
          `p${i}`,
          (i.toString(16) + 'b'.repeat(40)).slice(0, 40),
        ),
      })
      if (res.statusCode !== 202) throw new Error(`hook ${i}: ${res.statusCode} ${res.body}`)
    }
  }),
)
const seconds = (performance.now() - started) / 1000
console.log(
  `${TOTAL} hooks at concurrency ${CONCURRENCY}: ${(TOTAL / seconds).toFixed(0)} hooks/s (${((seconds * 1000) / TOTAL).toFixed(3)} ms each)`,
)
await app.close()
await bench.close()
