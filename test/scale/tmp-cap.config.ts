import { defineConfig, mergeConfig } from 'vitest/config'
import conf from './tmp-patched.config.ts'
const GUARD = `
  if (dialect === 'postgres' && claimed && claimed.in_flight_cap !== null && claimed.fairness_key !== null) {
    // Two claimers may both have seen the key under its cap: serialize on the key, then
    // count again with everything committed before this statement visible.
    const capKey = JSON.stringify(['proctor.cap', claimed.queue, claimed.fairness_key])
    await sql\`select pg_advisory_xact_lock(hashtextextended(\${capKey}, 0))\`.execute(trx)
    const row = await trx
      .selectFrom('jobs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('queue', '=', claimed.queue)
      .where('fairness_key', '=', claimed.fairness_key)
      .where('state', '=', 'running')
      .executeTakeFirstOrThrow()
    if (Number(row.n) > claimed.in_flight_cap) {
      await trx
        .updateTable('jobs')
        .set({ state: 'waiting', attempt: sql<number>\`attempt - 1\`, lease_token: null, lease_expires_at: null, worker_id: null, claimed_at: null })
        .where('id', '=', claimed.id)
        .execute()
      return undefined
    }
  }
  return claimed
}
`
export default mergeConfig(conf, defineConfig({ plugins: [{ name: 'patch-cap', enforce: 'pre', transform(code, id) {
  if (!id.endsWith('src/queue/claim.ts')) return
  const out = code.replace("  return trx\n    .updateTable('jobs')", "  const claimed = await trx\n    .updateTable('jobs')").replace("    .returningAll()\n    .executeTakeFirst()\n}\n", "    .returningAll()\n    .executeTakeFirst()\n" + GUARD)
  if (out === code) throw new Error('cap patch did not apply')
  return out
} }] }))
