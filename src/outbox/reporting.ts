import type { AppContext } from '../app/context.ts'
import { forgeFeedbackTargets } from '../feedback/forge-targets.ts'
import { secretRedactor } from '../platform/secrets.ts'
import { platformTargets } from '../platform/updates.ts'
import { OutboxDispatcher } from './dispatcher.ts'
import { syncOutboxRoutes, type OutboxRoute } from './routes.ts'

/**
 * Wires reporting for a process that dispatches (the one serving the API): the platform's
 * targets and the forges' feedback targets, their routes stored for moveSubmission to read,
 * and a dispatcher for them (not started). Null when nothing is configured to receive
 * updates (the embedded platform without forge feedback).
 */
export async function setUpReporting(ctx: AppContext): Promise<OutboxDispatcher | null> {
  const redactor = secretRedactor(ctx.config)
  const redact = (text: string) => redactor.redact(text)
  const context = { forges: ctx.config.forges, publicUrl: ctx.config.server.publicUrl }
  const platform = platformTargets(ctx.platform, ctx.store, context)
  const feedback = forgeFeedbackTargets(ctx.config.forges, {
    store: ctx.store,
    clock: ctx.clock,
    log: ctx.log,
    publicUrl: ctx.config.server.publicUrl,
    redact,
  })
  const routes: OutboxRoute[] = [
    ...platform.map((t) => ({ target: t.id, audience: 'platform' as const, forge: null })),
    ...feedback.routes,
  ]

  const sync = await syncOutboxRoutes(ctx.store.db, routes, ctx.clock.now())
  if (sync.orphaned > 0) {
    ctx.log.warn(
      { orphaned: sync.orphaned },
      'pending outbox messages name targets that are no longer configured; they are dead now (GET /api/outbox?state=dead)',
    )
  }
  const targets = [...platform, ...feedback.targets]
  if (targets.length === 0) return null

  const outbox = ctx.config.platform.outbox
  return new OutboxDispatcher({ store: ctx.store, clock: ctx.clock, log: ctx.log }, targets, {
    pollMs: outbox.pollMs,
    leaseMs: outbox.leaseSeconds * 1000,
    concurrency: outbox.concurrency,
    backoff: { baseMs: outbox.backoffBaseMs, capMs: outbox.backoffCapMs },
    redact,
  })
}
