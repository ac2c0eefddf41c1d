import { afterEach, describe, expect, it } from 'vitest'

import { GroupCommitter } from '../../src/intake/group-commit.ts'
import { createTestContext, type TestContext } from './support/context.ts'

describe('group commit', () => {
  let t: TestContext

  afterEach(async () => {
    await t.close()
  })

  const insertEvent = (key: string) => (trx: Parameters<Parameters<GroupCommitter['run']>[0]>[0]) =>
    trx
      .insertInto('hook_events')
      .values({
        forge: 'gitlab',
        delivery_key: key,
        event_kind: 'tag_push',
        status: 'pending',
        received_at: 'now',
      })
      .returning('id')
      .executeTakeFirstOrThrow()

  it('commits units that arrive together and fails only the unit that throws', async () => {
    t = await createTestContext()
    const committer = new GroupCommitter(t.store)

    const results = await Promise.allSettled([
      committer.run(insertEvent('a')),
      committer.run(async (trx) => {
        await insertEvent('b')(trx)
        throw new Error('unit b fails after writing')
      }),
      committer.run(insertEvent('c')),
      committer.run(insertEvent('a')), // unique violation: fails alone
    ])

    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected'])
    const keys = await t.store.db
      .selectFrom('hook_events')
      .select('delivery_key')
      .orderBy('id')
      .execute()
    expect(keys.map((k) => k.delivery_key)).toEqual(['a', 'c'])
  })

  it('rejects every unit when the database is gone', async () => {
    t = await createTestContext()
    const committer = new GroupCommitter(t.store)
    await t.store.close()

    const results = await Promise.allSettled([
      committer.run(insertEvent('a')),
      committer.run(insertEvent('b')),
    ])

    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
  })
})
