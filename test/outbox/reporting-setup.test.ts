import { Writable } from 'node:stream'

import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'

import { parseConfig } from '../../src/config/proctor-config.ts'
import { ManualClock } from '../../src/domain/clock.ts'
import { setUpReporting } from '../../src/outbox/reporting.ts'
import { createPlatform } from '../../src/platform/create-platform.ts'
import { moveSubmission } from '../../src/submissions/transitions.ts'
import {
  addSubmission,
  openTestStore,
  sendJson,
  startStandIn,
  testContext,
  type StandIn,
  type TestStore,
} from './support/reporting.ts'

const WEBHOOK_SECRET = 'webhook-secret-that-must-not-leak'
const GITLAB_TOKEN = 'glpat-secret-that-must-not-leak'

describe('setting up reporting', () => {
  let ts: TestStore | undefined
  let standIn: StandIn | undefined

  afterEach(async () => {
    await standIn?.close()
    await ts?.close()
  })

  it('dispatches nothing for the embedded platform without forge feedback', async () => {
    ts = await openTestStore('setup embedded')
    const ctx = testContext(ts.store, new ManualClock())
    expect(await setUpReporting(ctx)).toBeNull()
    expect(await ts.store.db.selectFrom('outbox').selectAll().execute()).toEqual([])
  })

  it('refuses configurations that cannot work, saying what to set', async () => {
    expect(() => parseConfig({ platform: { kind: 'crowdai' } }, { env: {} })).toThrow(
      /platform\.crowdai: platform\.kind is crowdai: set platform\.crowdai/,
    )
    const shortSecret = { endpoints: [{ name: 'a', url: 'https://x.test', secret: 'short' }] }
    expect(() =>
      parseConfig({ platform: { kind: 'webhook', webhook: shortSecret } }, { env: {} }),
    ).toThrow(/at least 16 characters/)

    ts = await openTestStore('setup no token')
    const forge = {
      id: 'gitlab',
      kind: 'gitlab',
      baseUrl: 'https://g.test',
      cloneUrl: 'git://g/{path}.git',
      hookSecrets: ['s'],
    }
    const ctx = testContext(ts.store, new ManualClock(), {
      forges: [{ ...forge, feedback: { issue: true } }],
    })
    await expect(setUpReporting(ctx)).rejects.toThrow(/feedback is on but apiToken is not set/)
  })

  it('keeps configured secrets out of stored errors and log lines', async () => {
    ts = await openTestStore('setup redaction')
    // A receiver that echoes what it should not: its error names the secrets.
    standIn = await startStandIn((_, response) =>
      sendJson(response, 502, { message: `upstream said ${WEBHOOK_SECRET} and ${GITLAB_TOKEN}` }),
    )
    const lines: string[] = []
    const log = pino(
      { level: 'debug' },
      new Writable({ write: (chunk: Buffer, _, done) => (lines.push(chunk.toString()), done()) }),
    )
    const clock = new ManualClock('2026-03-10T12:00:00Z')
    const base = testContext(ts.store, clock, {
      platform: {
        kind: 'webhook',
        webhook: { endpoints: [{ name: 'scores', url: standIn.url, secret: WEBHOOK_SECRET }] },
      },
      forges: [
        {
          id: 'gitlab',
          kind: 'gitlab',
          baseUrl: 'https://g.test',
          cloneUrl: 'git://g/{path}.git',
          hookSecrets: ['hook-secret-xyz'],
          apiToken: GITLAB_TOKEN,
        },
      ],
    })
    const ctx = {
      ...base,
      log,
      platform: createPlatform(base.config, { store: ts.store, clock, log }),
    }
    const dispatcher = await setUpReporting(ctx)
    if (!dispatcher) throw new Error('expected a dispatcher')
    expect(dispatcher.targets).toEqual(['webhook:scores'])

    const id = await addSubmission(ts.store, { platformSubmissionId: 'proctor:1' })
    await moveSubmission(ts.store.db, id, {
      to: 'queued',
      message: 'queued',
      actor: 'test',
      at: clock.now(),
    })
    expect(await dispatcher.deliverDue()).toBe(1)

    const row = await ts.store.db
      .selectFrom('outbox')
      .select(['state', 'last_error'])
      .executeTakeFirstOrThrow()
    expect(row.state).toBe('pending')
    expect(row.last_error).toBe('webhook scores: HTTP 502: upstream said [redacted] and [redacted]')
    const logged = lines.join('')
    expect(logged).toContain('delivery failed; retrying later')
    expect(logged).not.toContain(WEBHOOK_SECRET)
    expect(logged).not.toContain(GITLAB_TOKEN)
  })
})
