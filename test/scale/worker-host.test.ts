import { afterEach, describe, expect, it } from 'vitest'

import { systemClock } from '../../src/domain/clock.ts'
import { connectDocker } from '../../src/runtime/docker-client.ts'
import { withBuildLock, type BuildKey } from '../../src/scale/build-lock.ts'
import { detectCapabilities } from '../../src/scale/capabilities.ts'
import { servableQueues } from '../../src/scale/data-check.ts'
import { DiskGuard, readDisk } from '../../src/scale/disk-guard.ts'
import { markLostWorkers } from '../../src/scale/lost-workers.ts'
import { removeOrphanContainers } from '../../src/scale/orphan-containers.ts'
import { WorkerPresence } from '../../src/scale/worker-presence.ts'
import type { Store } from '../../src/store/database.ts'
import { silentLog } from '../queue/support/builders.ts'
import { sqliteFactory } from '../queue/support/stores.ts'
import { postgresFactory } from '../support/postgres.ts'
import { assertServicesUp } from '../support/services.ts'
import { TEST_ENV } from '../support/env.ts'

const stores: Store[] = []
async function track(store: Promise<Store>): Promise<Store> {
  stores.push(await store)
  return stores.at(-1) as Store
}
afterEach(async () => {
  for (const store of stores.splice(0).reverse()) await store.close()
})

const KEY: BuildKey = {
  forge: 'gitlab',
  projectId: '42',
  commitSha: 'a'.repeat(40),
  builder: 'dockerfile',
  builderVersion: '1',
}

describe.each([sqliteFactory, postgresFactory])('worker housekeeping on $dialect', (factory) => {
  it('builds one image key at a time across pools, and different keys at once', async ({
    task,
  }) => {
    const store = await track(factory.open(task.name))
    const other = await track(factory.reopen(store))
    const spans: { key: string; start: number; end: number }[] = []
    async function build(pool: Store, key: BuildKey): Promise<void> {
      await withBuildLock(pool, key, undefined, async () => {
        const start = performance.now()
        await new Promise((resolve) => setTimeout(resolve, 150))
        spans.push({ key: key.commitSha, start, end: performance.now() })
      })
    }
    const otherKey = { ...KEY, commitSha: 'b'.repeat(40) }

    // SQLite has one owning process: its lock is per process, so both builds use `store`.
    const second = factory.dialect === 'postgres' ? other : store
    await Promise.all([build(store, KEY), build(second, KEY), build(second, otherKey)])

    const same = spans.filter((s) => s.key === KEY.commitSha).sort((a, b) => a.start - b.start)
    expect(same).toHaveLength(2)
    expect(same[1]?.start).toBeGreaterThanOrEqual(same[0]?.end ?? Infinity)
    const different = spans.find((s) => s.key === otherKey.commitSha)
    expect(different?.start).toBeLessThan(same[0]?.end ?? 0)
  })

  it('marks a silent worker lost and brings it back alive at its next heartbeat', async ({
    task,
  }) => {
    const store = await track(factory.open(task.name))
    const ctx = { store, clock: systemClock, log: silentLog }
    const old = new Date(Date.now() - 120_000).toISOString()
    const fresh = new Date().toISOString()
    await store.db
      .insertInto('workers')
      .values([
        {
          id: 'silent',
          host: 'h1',
          queues_json: '["*"]',
          capabilities_json: '[]',
          slots: 1,
          state: 'alive',
          started_at: old,
          heartbeat_at: old,
        },
        {
          id: 'busy',
          host: 'h2',
          queues_json: '["*"]',
          capabilities_json: '[]',
          slots: 1,
          state: 'alive',
          started_at: old,
          heartbeat_at: fresh,
        },
        {
          id: 'gone',
          host: 'h3',
          queues_json: '["*"]',
          capabilities_json: '[]',
          slots: 1,
          state: 'stopped',
          started_at: old,
          heartbeat_at: old,
        },
      ])
      .execute()

    expect(await markLostWorkers(ctx, 30_000)).toEqual(['silent'])
    await new WorkerPresence(ctx, 'silent', silentLog).beat()
    await new WorkerPresence(ctx, 'gone', silentLog).beat()

    const states = await store.db
      .selectFrom('workers')
      .select(['id', 'state'])
      .orderBy('id')
      .execute()
    expect(states).toEqual([
      { id: 'busy', state: 'alive' },
      { id: 'gone', state: 'stopped' },
      { id: 'silent', state: 'alive' },
    ])
  })
})

describe('a worker host', () => {
  it('stops taking jobs below its disk floor and reads a folder not made yet from its parent', async () => {
    const missing = `${TEST_ENV.proctorHome}/not-made-yet/work`
    const reading = await readDisk(missing)
    const roomy = new DiskGuard(
      { paths: [missing], minFreeBytes: 1, minFreeFraction: 0 },
      silentLog,
    )
    const full = new DiskGuard(
      { paths: [missing], minFreeBytes: reading.totalBytes + 1, minFreeFraction: 0 },
      silentLog,
    )

    expect(reading.totalBytes).toBeGreaterThan(0)
    expect(await roomy.shouldTakeJobs()).toBe(true)
    expect(await full.shouldTakeJobs()).toBe(false)
  })

  it('serves every queue but the challenges whose data it lacks', () => {
    expect(servableQueues(['*'], ['iris', 'digits', 'intake'], new Set(['iris']))).toEqual([
      'digits',
      'intake',
    ])
    expect(servableQueues(['iris'], ['iris', 'digits'], new Set())).toBeNull()
  })

  it('advertises gVisor exactly when the engine has runsc, and GPUs as configured', async () => {
    await assertServicesUp(['docker'])
    const host = await detectCapabilities(connectDocker(), ['gpu'], silentLog)

    expect(host.gvisor).toBe(host.runtimes.includes('runsc'))
    expect(host.capabilities).toContain('gpu')
    expect(host.capabilities.includes('gvisor')).toBe(host.gvisor)
  })

  it('removes containers of attempts that lost their lease and keeps the live attempt and strangers', async ({
    task,
  }) => {
    await assertServicesUp(['docker', 'images'])
    const store = await track(sqliteFactory.open(task.name))
    const docker = connectDocker()
    const now = new Date().toISOString()
    // Ids far above anything another test or drill database holds on the shared engine.
    const job = await store.db
      .insertInto('jobs')
      .values({
        id: 987_654,
        kind: 'evaluate',
        queue: 'iris',
        state: 'running',
        submission_id: 987_650,
        capabilities_json: '[]',
        attempt: 2,
        max_attempts: 3,
        run_after: now,
        created_at: now,
        updated_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    async function container(labels: Record<string, string>): Promise<string> {
      const created = await docker.createContainer({
        Image: TEST_ENV.busyboxImage,
        Cmd: ['true'],
        Labels: { proctor: '1', ...labels },
      })
      return created.id
    }
    const lost = await container({
      'proctor.job': String(job.id),
      'proctor.attempt': '1',
      'proctor.submission': '987650',
    })
    const live = await container({
      'proctor.job': String(job.id),
      'proctor.attempt': '2',
      'proctor.submission': '987650',
    })
    const stranger = await container({
      'proctor.job': '987999',
      'proctor.attempt': '1',
      'proctor.submission': '1',
    })

    try {
      const removed = await removeOrphanContainers({ store }, docker, silentLog)

      expect(removed).toEqual([lost.slice(0, 12)])
      const left = await docker.listContainers({ all: true, filters: { label: ['proctor.job'] } })
      expect(left.map((c) => c.Id)).toEqual(expect.arrayContaining([live, stranger]))
    } finally {
      for (const id of [lost, live, stranger]) {
        await docker
          .getContainer(id)
          .remove({ force: true })
          .catch(() => undefined)
      }
    }
  })
})
