import Docker from 'dockerode'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { z } from 'zod'

import type { AppContext } from '../app/context.ts'
import { bytesFreedBy, storageReport } from '../archive/accounting.ts'
import { collectGarbage } from '../archive/garbage-collect.ts'
import { setPinned } from '../archive/pin.ts'
import { pushPauseState, resumePushes } from '../archive/push-pause.ts'
import { registryAdminConfig, RegistryService } from '../archive/registry-service.ts'
import { retentionPolicyFor } from '../archive/retention-policy.ts'
import { applyRetention, planRetention } from '../archive/retention.ts'
import { getVerification, listVerifications, requestVerification } from '../archive/verify.ts'
import { BadRequestError } from '../domain/errors.ts'
import { publishEvaluation } from '../reruns/publish-evaluation.ts'
import { createFilteredReruns } from '../reruns/select-reruns.ts'
import { isOrganizerOf, requireScope } from './auth.ts'

export interface ArchiveRouteOptions {
  /** The engine verifications rebuild on; by default the configured one. */
  readonly docker?: Docker
  /** The registry process garbage collection restarts; by default scripts/services.sh's. */
  readonly registry?: RegistryService
}

const idParams = z.object({ id: z.coerce.number().int().positive() })
const storageQuery = z.object({
  challenge: z.string().optional(),
  participant: z.string().optional(),
})
const freedBody = z.object({ submissions: z.array(z.number().int().positive()).min(1) }).strict()
const rerunBody = z
  .object({
    challenge: z.string().optional(),
    submissions: z.array(z.number().int().positive()).optional(),
    states: z.array(z.enum(['scored', 'failed'])).optional(),
    participant: z.string().optional(),
    createdAfter: z.iso.datetime({ offset: true }).optional(),
    createdBefore: z.iso.datetime({ offset: true }).optional(),
    minScore: z.number().optional(),
    maxScore: z.number().optional(),
    rules: z.enum(['recorded', 'current']).default('recorded'),
  })
  .strict()
const retentionBody = z
  .object({
    apply: z.boolean().default(false),
    policy: z
      .object({
        keepUntilEnd: z.boolean().optional(),
        keepBestPerParticipant: z.number().int().min(0).optional(),
        keepLastPerParticipant: z.number().int().min(0).optional(),
        graceDays: z.number().min(0).optional(),
      })
      .strict()
      .default({}),
  })
  .strict()
  .prefault({})
const gcBody = z
  .object({ dryRun: z.boolean().default(false) })
  .strict()
  .prefault({})

/**
 * The archive: storage, verification, pins, retention, garbage collection; re-run batches
 * and publishing. Operators may do everything; organizers what concerns their challenges;
 * garbage collection is the operators' alone.
 *
 *   GET  /api/storage?challenge=iris&participant=alice      → bytes per challenge and participant
 *   POST /api/storage/freed        {"submissions":[3,4]}     → bytes deleting their images frees
 *   POST /api/submissions/42/verify                          → 202 {"verificationId":7}
 *   GET  /api/verifications/7                                → {"outcome":"identical","summary":{…}}
 *   GET  /api/submissions/42/verifications
 *   POST /api/submissions/42/pin   (and /unpin)
 *   POST /api/evaluations/17/publish                         → a re-run's result may reach the platform
 *   POST /api/reruns  {"challenge":"iris","participant":"alice","rules":"current"} → 202 {"reruns":[…]}
 *   POST /api/challenges/iris/retention {"apply":false,"policy":{"graceDays":0}} → the plan (dry run)
 *   POST /api/registry/gc          {"dryRun":false}          → what garbage collection reclaimed
 *   GET  /api/registry/maintenance                           → whether pushes are paused, last runs
 *   POST /api/registry/resume                                → ends a pause left by a failed run
 */
export function archiveRoutes(
  app: FastifyInstance,
  ctx: AppContext,
  options: ArchiveRouteOptions = {},
): void {
  const { db } = ctx.store
  const docker =
    options.docker ??
    new Docker({
      ...(ctx.config.docker.socketPath ? { socketPath: ctx.config.docker.socketPath } : {}),
      version: 'v1.41',
    })
  const registry = options.registry ?? new RegistryService(registryAdminConfig(ctx.config), ctx.log)
  const staff = { preHandler: requireScope('operator', 'organizer') }
  const operatorOnly = { preHandler: requireScope('operator') }
  const actorOf = (request: FastifyRequest) => request.caller?.name ?? 'api'

  async function challengeOfSubmission(
    request: FastifyRequest,
    id: number,
  ): Promise<string | null> {
    const row = await db
      .selectFrom('submissions')
      .select('challenge_id')
      .where('id', '=', id)
      .executeTakeFirst()
    if (!row) throw new BadRequestError(`no submission ${id}`, 404, 'not_found')
    assertOrganizes(request, row.challenge_id)
    return row.challenge_id
  }

  app.get('/api/storage', staff, async (request) => {
    const query = storageQuery.parse(request.query)
    if (request.caller?.scope === 'organizer' && request.caller.challenges !== null) {
      if (!query.challenge)
        throw new BadRequestError(
          'name a challenge you organize: ?challenge=<id>',
          403,
          'forbidden',
        )
      assertOrganizes(request, query.challenge)
    }
    return storageReport(ctx, query)
  })

  app.post('/api/storage/freed', operatorOnly, async (request) => {
    const body = freedBody.parse(request.body)
    return bytesFreedBy(ctx, body.submissions)
  })

  app.post('/api/submissions/:id/verify', staff, async (request, reply) => {
    const { id } = idParams.parse(request.params)
    await challengeOfSubmission(request, id)
    const { verificationId, done } = await requestVerification(ctx, id, {
      actor: actorOf(request),
      docker,
    })
    // It runs on in this process and stores its outcome; only losing the database (a
    // shutdown) can make recording it fail.
    done.catch((err: unknown) =>
      ctx.log.error(
        { err, verificationId },
        'could not record a verification; it stays unfinished',
      ),
    )
    return reply.code(202).send({ verificationId, submissionId: id })
  })

  app.get('/api/verifications/:id', staff, async (request, reply) => {
    const { id } = idParams.parse(request.params)
    const found = await getVerification(ctx, id)
    if (!found)
      return reply.code(404).send({ error: 'not_found', message: `no verification ${id}` })
    await challengeOfSubmission(request, found.submissionId)
    return found
  })

  app.get('/api/submissions/:id/verifications', staff, async (request) => {
    const { id } = idParams.parse(request.params)
    await challengeOfSubmission(request, id)
    return { verifications: await listVerifications(ctx, id) }
  })

  for (const [route, pinned] of [
    ['pin', true],
    ['unpin', false],
  ] as const) {
    app.post(`/api/submissions/:id/${route}`, staff, async (request) => {
      const { id } = idParams.parse(request.params)
      await challengeOfSubmission(request, id)
      return setPinned(ctx, id, pinned, { actor: actorOf(request) })
    })
  }

  app.post('/api/evaluations/:id/publish', staff, async (request) => {
    const { id } = idParams.parse(request.params)
    const evaluation = await db
      .selectFrom('evaluations')
      .select('submission_id')
      .where('id', '=', id)
      .executeTakeFirst()
    if (!evaluation) throw new BadRequestError(`no evaluation ${id}`, 404, 'not_found')
    await challengeOfSubmission(request, Number(evaluation.submission_id))
    return publishEvaluation(ctx, id, { actor: actorOf(request) })
  })

  app.post('/api/reruns', staff, async (request, reply) => {
    const { rules, ...filter } = rerunBody.parse(request.body ?? {})
    if (request.caller?.scope === 'organizer' && request.caller.challenges !== null) {
      if (!filter.challenge)
        throw new BadRequestError('name a challenge you organize', 403, 'forbidden')
      assertOrganizes(request, filter.challenge)
    }
    const reruns = await createFilteredReruns(ctx, filter, { actor: actorOf(request), rules })
    return reply.code(202).send({ reruns })
  })

  app.post('/api/challenges/:id/retention', staff, async (request) => {
    const { id } = z.object({ id: z.string() }).parse(request.params)
    assertOrganizes(request, id)
    const body = retentionBody.parse(request.body ?? {})
    const challenge = ctx.challenges.get(id)
    if (!challenge) throw new BadRequestError(`no challenge ${id} is loaded`, 404, 'not_found')
    const overrides = Object.fromEntries(
      Object.entries(body.policy).filter(([, v]) => v !== undefined),
    )
    const plan = await planRetention(ctx, id, retentionPolicyFor(challenge.definition, overrides))
    if (!body.apply) return { dryRun: true, plan }
    return { dryRun: false, ...(await applyRetention(ctx, plan, { actor: actorOf(request) })) }
  })

  app.post('/api/registry/gc', operatorOnly, async (request) => {
    const body = gcBody.parse(request.body ?? {})
    return collectGarbage(ctx, registry, { actor: actorOf(request), dryRun: body.dryRun })
  })

  app.get('/api/registry/maintenance', operatorOnly, async () => {
    const runs = await db
      .selectFrom('gc_runs')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(10)
      .execute()
    return { pushes: await pushPauseState(ctx), gcRuns: runs }
  })

  app.post('/api/registry/resume', operatorOnly, async (request) => {
    const before = await pushPauseState(ctx)
    await resumePushes(ctx)
    ctx.log.warn(
      { by: actorOf(request), pausedBy: before.requestedBy, since: before.since },
      'pushes to the archive resumed by hand',
    )
    return { resumed: before.paused, pushes: await pushPauseState(ctx) }
  })
}

function assertOrganizes(request: FastifyRequest, challengeId: string | null): void {
  const caller = request.caller
  if (caller?.scope === 'operator') return
  if (challengeId !== null && isOrganizerOf(caller, challengeId)) return
  throw new BadRequestError(
    `this token does not organize challenge ${challengeId ?? '(none)'}`,
    403,
    'forbidden',
  )
}
