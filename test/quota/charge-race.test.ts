import { Worker } from 'node:worker_threads'

import { sql } from 'kysely'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import type { Store } from '../../src/store/database.ts'
import { STORE_FACTORIES } from '../queue/support/stores.ts'
import { charge, unitsHeld, type ChargeVariant } from './support/race-harness.ts'

/**
 * The quota race: a subject with one unit left pushes twice (or 20 times) at the same
 * instant. Exactly one push may be charged, every time. The same harness run with a naive
 * check-then-insert must over-charge, or it would not be racing at all.
 */
const REPETITIONS = 50
const NOW = new Date('2026-03-10T12:00:00Z')
const EARLIER = new Date('2026-03-10T09:00:00Z')

/** Boots a TypeScript thread: Node 20 does not pass `--import tsx` on to worker threads. */
const TS_THREAD = `
const { workerData } = require('node:worker_threads')
import('tsx/esm/api').then(({ register }) => { register(); return import(workerData.entry) })
`

interface RaceOutcome {
  /** Repetitions in which more than one push was charged. */
  overCharged: number
  /** Pushes charged per repetition. */
  charged: number[]
  errors: string[]
}

describe.each(STORE_FACTORIES)('quota check-and-charge race on $dialect', (factory) => {
  let store: Store
  let nextSubmission = 1_000

  beforeEach(async (context) => {
    store = await factory.open(context.task.name)
  })
  afterEach(async () => {
    await store.close()
  })

  /** Gives `subject` one charge already, so exactly one unit (of 2) is left. */
  async function leaveOneUnit(subject: string): Promise<void> {
    await store.db
      .insertInto('quota_charges')
      .values({
        challenge_id: 'iris',
        round_id: null,
        subject,
        submission_id: nextSubmission++,
        charged_at: EARLIER.toISOString(),
      })
      .execute()
  }

  /** Racers in this process, sharing its one connection (how proctor runs on SQLite). */
  async function raceInProcess(variant: ChargeVariant, racers: number): Promise<RaceOutcome> {
    const outcome: RaceOutcome = { overCharged: 0, charged: [], errors: [] }
    for (let rep = 0; rep < REPETITIONS; rep++) {
      const subject = `${variant}-${racers}-${rep}`
      await leaveOneUnit(subject)
      const results = await Promise.allSettled(
        Array.from({ length: racers }, () =>
          charge(store, variant, { subject, submissionId: nextSubmission++, now: NOW }),
        ),
      )
      for (const r of results) if (r.status === 'rejected') outcome.errors.push(String(r.reason))
      const charged = results.filter((r) => r.status === 'fulfilled' && r.value).length
      outcome.charged.push(charged)
      if (charged > 1 || (await unitsHeld(store, subject)) > 2) outcome.overCharged++
    }
    return outcome
  }

  /** Racers in threads, each with its own connection to the file (as other processes). */
  async function raceAcrossConnections(
    variant: ChargeVariant,
    racers: number,
    repetitions = REPETITIONS,
  ): Promise<RaceOutcome> {
    const file = await databaseFile(store)
    const threads = Array.from(
      { length: racers },
      () =>
        new Worker(TS_THREAD, {
          eval: true,
          workerData: {
            entry: new URL('./support/charge-thread.ts', import.meta.url).href,
            file,
            variant,
          },
        }),
    )
    const outcome: RaceOutcome = { overCharged: 0, charged: [], errors: [] }
    try {
      for (let rep = 0; rep < repetitions; rep++) {
        const subject = `threads-${variant}-${racers}-${rep}`
        await leaveOneUnit(subject)
        const barrier = new SharedArrayBuffer(4)
        const replies = await Promise.all(
          threads.map((thread) => {
            const reply = nextMessage(thread)
            thread.postMessage({
              subject,
              submissionId: nextSubmission++,
              now: NOW.toISOString(),
              barrier,
              racers,
            })
            return reply
          }),
        )
        for (const r of replies) if (r.error) outcome.errors.push(r.error)
        const charged = replies.filter((r) => r.charged).length
        outcome.charged.push(charged)
        if (charged > 1 || (await unitsHeld(store, subject)) > 2) outcome.overCharged++
      }
    } finally {
      await Promise.all(threads.map((thread) => thread.terminate()))
    }
    return outcome
  }

  it('charges exactly one of two simultaneous pushes for the last unit, 50 times over', async () => {
    const outcome = await raceInProcess('atomic', 2)

    expect(outcome.errors).toEqual([])
    expect(outcome.charged).toEqual(Array(REPETITIONS).fill(1))
    expect(outcome.overCharged).toBe(0)
  })

  it('charges exactly one of 20 simultaneous pushes for the last unit, 50 times over', async () => {
    const outcome = await raceInProcess('atomic', 20)

    expect(outcome.errors).toEqual([])
    expect(outcome.charged).toEqual(Array(REPETITIONS).fill(1))
  })

  it('charges exactly one push when racers hold separate connections to the file', async () => {
    if (factory.dialect !== 'sqlite') return
    const two = await raceAcrossConnections('atomic', 2)
    // 20 connections queue on SQLite's busy handler (sleeps of up to 100 ms): ~0.4 s per
    // repetition, so fewer repetitions here; the in-process test runs 20 racers 50 times.
    const twenty = await raceAcrossConnections('atomic', 20, 10)

    expect(two.errors).toEqual([])
    expect(two.charged).toEqual(Array(REPETITIONS).fill(1))
    expect(twenty.errors).toEqual([])
    expect(twenty.charged).toEqual(Array(10).fill(1))
  })

  it('over-charges with a check-then-insert in two steps, so the harness races for real', async () => {
    const inProcess = await raceInProcess('two-step', 2)
    const threads = factory.dialect === 'sqlite' ? await raceAcrossConnections('two-step', 2) : null

    // The invariant the atomic variant keeps must break here, or the test proves nothing.
    expect(inProcess.errors).toEqual([])
    expect(inProcess.overCharged).toBeGreaterThan(0)
    if (threads) expect(threads.overCharged).toBeGreaterThan(0)
    console.info(
      `two-step check-then-insert over-charged in ${inProcess.overCharged}/${REPETITIONS} ` +
        `repetitions in one process` +
        (threads ? ` and ${threads.overCharged}/${REPETITIONS} across connections` : ''),
    )
  })
})

function nextMessage(thread: Worker): Promise<{ charged?: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    function onMessage(message: { charged?: boolean; error?: string }) {
      thread.off('error', onError)
      resolve(message)
    }
    function onError(err: Error) {
      thread.off('message', onMessage)
      reject(err)
    }
    thread.once('message', onMessage)
    thread.once('error', onError)
  })
}

async function databaseFile(store: Store): Promise<string> {
  const list = await sql<{ name: string; file: string }>`pragma database_list`.execute(store.db)
  const main = list.rows.find((r) => r.name === 'main')
  if (!main?.file) throw new Error('cannot tell the SQLite file of this store')
  return main.file
}
