import { sql } from 'kysely'
import { afterEach, describe, expect, it } from 'vitest'

import { systemClock } from '../../src/domain/clock.ts'
import { JobQueue, type ClaimedJob } from '../../src/queue/job-queue.ts'
import { JOB_CHANNEL, wakeOnNewJobs } from '../../src/queue/notify.ts'
import {
  assertSchemaNotAhead,
  migrate,
  SCHEMA_VERSION,
  type Store,
} from '../../src/store/database.ts'
import { silentLog } from '../queue/support/builders.ts'
import { sqliteFactory } from '../queue/support/stores.ts'
import { postgresFactory, reopenPostgresTestStore } from '../support/postgres.ts'

/**
 * What the PostgreSQL store adds to the shared contract: numbers for bigint ids and counts,
 * a schema per deployment, refusing a database migrated ahead, job notifications delivered
 * on commit, and claims through separate pools that never hand one job out twice.
 */
const stores: Store[] = []

async function track(store: Promise<Store>): Promise<Store> {
  const opened = await store
  stores.push(opened)
  return opened
}

afterEach(async () => {
  for (const store of stores.splice(0).reverse()) await store.close()
})

describe.each([sqliteFactory, postgresFactory])('the store on $dialect', (factory) => {
  it('refuses a database migrated by a newer proctor, naming the unknown migration', async ({
    task,
  }) => {
    const store = await track(factory.open(task.name))
    await expect(assertSchemaNotAhead(store)).resolves.toBeUndefined()

    await sql`insert into kysely_migration (name, timestamp)
              values ('999-from-the-future', '2030-01-01T00:00:00Z')`.execute(store.db)

    await expect(assertSchemaNotAhead(store)).rejects.toMatchObject({
      code: 'schema_ahead',
      message: expect.stringContaining('999-from-the-future') as unknown,
    })
  })

  it('applies nothing twice and reports the latest migration as the schema version', async ({
    task,
  }) => {
    const store = await track(factory.open(task.name))

    expect(await migrate(store)).toEqual([])
    const rows = await sql<{
      name: string
    }>`select name from kysely_migration order by name`.execute(store.db)
    expect(rows.rows.at(-1)?.name).toBe(SCHEMA_VERSION)
  })
})

describe('the store on PostgreSQL', () => {
  it('returns bigint ids, counts and numeric values as numbers', async ({ task }) => {
    const store = await track(postgresFactory.open(task.name))
    const queue = new JobQueue(store, systemClock)

    const id = await queue.enqueue(store.db, { kind: 'intake', queue: 'intake', maxAttempts: 1 })
    const row = await store.db
      .selectFrom('jobs')
      .select(['id', (eb) => eb.fn.countAll().as('n'), sql<number>`1.5::numeric`.as('x')])
      .groupBy('id')
      .executeTakeFirstOrThrow()

    expect(row).toEqual({ id, n: 1, x: 1.5 })
    expect(typeof row.id).toBe('number')
  })

  it('notifies listeners of a new job when its transaction commits, not before', async ({
    task,
  }) => {
    const store = await track(postgresFactory.open(task.name))
    const queue = new JobQueue(store, systemClock)
    const heard: { queue: string; at: number }[] = []
    const listener = await store.listen(JOB_CHANNEL, (payload) =>
      heard.push({ queue: payload, at: performance.now() }),
    )

    let committedAt = 0
    await store.db.transaction().execute(async (trx) => {
      await queue.enqueue(trx, { kind: 'evaluate', queue: 'iris', maxAttempts: 3 })
      await new Promise((resolve) => setTimeout(resolve, 200))
      expect(heard).toEqual([])
      committedAt = performance.now()
    })
    await waitUntil(() => heard.length > 0, 2_000)
    await listener.close()

    expect(heard.map((h) => h.queue)).toEqual(['iris'])
    expect((heard[0]?.at ?? Infinity) - committedAt).toBeLessThan(100)
  })

  it('wakes an idle worker slot when another process enqueues, and again after its connection drops', async ({
    task,
  }) => {
    const store = await track(postgresFactory.open(task.name))
    const other = await track(reopenPostgresTestStore(store))
    const workerQueue = new JobQueue(store, systemClock)
    const apiQueue = new JobQueue(other, systemClock)
    let wakes = 0
    workerQueue.onWake(() => wakes++)
    const listener = await wakeOnNewJobs(store, workerQueue, silentLog)
    await waitUntil(() => wakes === 1, 2_000) // woken once on connecting

    await apiQueue.enqueue(other.db, { kind: 'intake', queue: 'intake', maxAttempts: 1 })
    await waitUntil(() => wakes === 2, 2_000)

    // Cut the listening connection from the server side, as a database restart would.
    await sql`select pg_terminate_backend(pid) from pg_stat_activity
              where query ilike ${`listen%${JOB_CHANNEL}%`}`.execute(other.db)
    await waitUntil(
      () => listener.connected,
      5_000,
      () => wakes >= 3,
    )
    const before = wakes
    await apiQueue.enqueue(other.db, { kind: 'intake', queue: 'intake', maxAttempts: 1 })
    await waitUntil(() => wakes > before, 2_000)
    await listener.close()

    expect(wakes).toBeGreaterThanOrEqual(4)
  })

  it('hands each of 200 jobs to exactly one of 4 pools claiming 10 at a time', async ({ task }) => {
    const store = await track(postgresFactory.open(task.name))
    const pools = [
      store,
      ...(await Promise.all([1, 2, 3].map(() => track(reopenPostgresTestStore(store))))),
    ]
    const seed = new JobQueue(store, systemClock)
    for (let i = 0; i < 200; i++) {
      await seed.enqueue(store.db, {
        kind: 'evaluate',
        queue: 'iris',
        fairnessKey: `p${i % 7}`,
        maxAttempts: 3,
      })
    }

    const claimed = await Promise.all(
      pools.flatMap((pool, p) => {
        const queue = new JobQueue(pool, systemClock)
        return Array.from({ length: 10 }, (_, slot) => drain(queue, `w${p}-${slot}`))
      }),
    )

    const ids = claimed.flat()
    expect(ids).toHaveLength(200)
    expect(new Set(ids).size).toBe(200)
    const rows = await store.db.selectFrom('jobs').select(['state', 'attempt']).execute()
    expect(rows.every((r) => r.state === 'done' && r.attempt === 1)).toBe(true)
  })
})

/** Claims and completes until the queue is empty; returns the ids taken. */
async function drain(queue: JobQueue, workerId: string): Promise<number[]> {
  const taken: number[] = []
  for (;;) {
    const job: ClaimedJob | null = await queue.claim({
      workerId,
      queues: ['iris'],
      capabilities: [],
      leaseMs: 60_000,
    })
    if (!job) return taken
    taken.push(job.id)
    await queue.withLease(job, (trx) => queue.complete(trx, job))
  }
}

async function waitUntil(
  condition: () => boolean,
  timeoutMs: number,
  also: () => boolean = () => true,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(condition() && also())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
