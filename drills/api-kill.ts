import { check, verdict, type DrillResult } from './support/checks.ts'
import { DrillEnv, sleep, waitFor } from './support/drill-env.ts'

const HOOKS = 1_000
const CONCURRENCY = 16

/**
 * Drill 2: a burst of 1,000 tag pushes with distinct tags reaches one API process, which is
 * killed with SIGKILL `count` times during the burst (each time once the database shows the
 * next share of the burst stored) and started again. The forge's part: a hook that got no
 * 2xx is sent again. Every hook answered 2xx must be a stored event that becomes a
 * submission. Workers serve intake only: no builds.
 */
export async function runApiKillDrill(count: number): Promise<DrillResult> {
  const started = Date.now()
  const env = await DrillEnv.create('api-kill', { apis: 1, workers: 2, workerQueues: 'intake' })
  try {
    const pushed = await env.pushTag(0.5)
    const tags = Array.from({ length: HOOKS }, (_, i) => `burst-${i}`)
    await env.addTags(pushed.commit, tags)
    await env.startAll()

    const acked = new Map<string, number>() // tag → event id from a 2xx
    const statuses = new Map<number, number>()
    const pending = [...tags]
    let inFlight = 0
    const kills: string[] = []
    let killsDone = 0
    const burstStarted = Date.now()

    // The striker: kills the API each time the stored events pass the next mark.
    const striker = (async () => {
      while (killsDone < count) {
        const mark = Math.floor((HOOKS * (killsDone + 1)) / (count + 1))
        await waitFor(
          `${mark} events stored`,
          300_000,
          async () => (await storedEvents(env)) >= mark,
          10,
        )
        const pid = env.kill9('api-0')
        kills.push(`kill -9 api-0 (pid ${pid}) at ${await storedEvents(env)} events stored`)
        killsDone++
        await sleep(200)
        env.restart('api-0')
        await env.waitForApi(env.apiPorts[0] ?? 0)
      }
    })()

    // The forge: sends each hook until it is answered 2xx, CONCURRENCY at a time.
    async function sender(): Promise<void> {
      for (;;) {
        const tag = pending.shift()
        if (tag === undefined) {
          if (inFlight === 0) return
          await sleep(20)
          continue
        }
        inFlight++
        const result = await env.postHook(env.hookBody({ ...pushed, tag }), 0, 5_000)
        inFlight--
        statuses.set(result.status, (statuses.get(result.status) ?? 0) + 1)
        if (result.status >= 200 && result.status < 300 && result.eventId !== undefined)
          acked.set(tag, result.eventId)
        else {
          pending.push(tag)
          await sleep(50)
        }
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, () => sender()))
    const burstSeconds = (Date.now() - burstStarted) / 1000
    await striker

    const ids = [...acked.values()]
    await waitFor(
      'every acknowledged hook to have its submission',
      300_000,
      async () => {
        const row = await env.store.db
          .selectFrom('hook_events')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('id', 'in', ids)
          .where('submission_id', 'is not', null)
          .executeTakeFirstOrThrow()
        return Number(row.n) === ids.length
      },
      500,
    )

    const events = await env.store.db
      .selectFrom('hook_events')
      .select(['id', 'tag', 'submission_id'])
      .execute()
    const stored = new Map(events.map((e) => [e.id, e]))
    const missing = ids.filter((id) => !stored.has(id))
    const withoutSubmission = ids.filter((id) => stored.get(id)?.submission_id == null)
    const submissions = await env.store.db.selectFrom('submissions').select(['id', 'tag']).execute()
    const perTag = new Map<string, number>()
    for (const s of submissions) perTag.set(s.tag, (perTag.get(s.tag) ?? 0) + 1)
    const duplicated = [...perTag.values()].filter((n) => n > 1).length

    return verdict(
      'api-kill',
      count,
      started,
      [
        check(
          'every hook was eventually answered 2xx',
          acked.size === HOOKS,
          `${acked.size}/${HOOKS}`,
        ),
        check(
          'every 2xx names a stored event',
          missing.length === 0,
          missing.length ? `missing: ${missing.slice(0, 10).join(',')}` : `${ids.length} stored`,
        ),
        check(
          'every acknowledged event became a submission',
          withoutSubmission.length === 0,
          `${withoutSubmission.length} without`,
        ),
        check(
          'one submission per tag',
          duplicated === 0 && perTag.size === HOOKS,
          `${perTag.size} tags with submissions, ${duplicated} with more than one`,
        ),
        check(
          'the API was killed as often as asked',
          kills.length === count,
          `${kills.length} kills`,
        ),
      ],
      {
        kills,
        statuses: Object.fromEntries([...statuses].sort()),
        burstSeconds,
        eventsStored: events.length,
      },
    )
  } finally {
    await env.close()
  }
}

async function storedEvents(env: DrillEnv): Promise<number> {
  const row = await env.store.db
    .selectFrom('hook_events')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow()
  return Number(row.n)
}
