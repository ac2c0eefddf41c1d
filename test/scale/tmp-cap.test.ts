import { expect, it } from 'vitest'
import { systemClock } from '../../src/domain/clock.ts'
import { JobQueue } from '../../src/queue/job-queue.ts'
import { postgresFactory, reopenPostgresTestStore } from '../support/postgres.ts'
it('cap race', async ({ task }) => {
  const store = await postgresFactory.open(task.name)
  const pools = [store, ...(await Promise.all([1, 2, 3].map(() => reopenPostgresTestStore(store))))]
  let over = 0
  let claimedTotal = 0
  for (let rep = 0; rep < 20; rep++) {
    const seed = new JobQueue(store, systemClock)
    for (let i = 0; i < 8; i++) await seed.enqueue(store.db, { kind: 'evaluate', queue: `q${rep}`, fairnessKey: 'alice', inFlightCap: 1, maxAttempts: 3 })
    const claims = await Promise.all(pools.flatMap((p, i) => [0, 1].map((s) => new JobQueue(p, systemClock).claim({ workerId: `w${i}${s}`, queues: [`q${rep}`], capabilities: [], leaseMs: 60000 }))))
    const n = claims.filter(Boolean).length
    claimedTotal += n
    if (n > 1) over++
  }
  console.log('over cap in', over, 'of 20; claimed', claimedTotal)
  for (const p of pools.reverse()) await p.close()
  expect(over).toBe(0)
})
