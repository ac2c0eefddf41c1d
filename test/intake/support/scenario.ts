import { randomInt } from 'node:crypto'

import type { FastifyInstance } from 'fastify'

import {
  createProject,
  type FileContent,
  type GitProject,
  type TagPush,
} from '../../support/git-server.ts'
import {
  buildHookApp,
  createTestContext,
  FLOWERS,
  removeProjectAndNamespace,
  uniqueNamespace,
  type TestContext,
  type TestContextOptions,
} from './context.ts'
import { deliver, gitlabTagPushBody, type HookAnswer } from './deliveries.ts'
import { drainIntake, type DrainResult } from './worker.ts'

export const MANIFEST = JSON.stringify({ challenge_id: FLOWERS, authors: ['alice'] })

/**
 * One test's world: a store, the hook app, and its own project on the git daemon (named after
 * the challenge unless told otherwise) with crowdai.json committed.
 */
export class Scenario {
  readonly t: TestContext
  readonly app: FastifyInstance
  readonly project: GitProject
  readonly projectId: number

  private constructor(t: TestContext, app: FastifyInstance, project: GitProject) {
    this.t = t
    this.app = app
    this.project = project
    this.projectId = randomInt(1_000_000, 2_000_000_000)
  }

  static async create(
    options: TestContextOptions & {
      repoName?: string
      /** crowdai.json's text; null leaves it out. */
      manifest?: string | null
      files?: Record<string, FileContent>
    } = {},
  ): Promise<Scenario> {
    const t = await createTestContext(options)
    const app = await buildHookApp(t.ctx)
    const manifest = options.manifest === undefined ? MANIFEST : options.manifest
    const project = await createProject(`${uniqueNamespace()}/${options.repoName ?? FLOWERS}`, {
      'README.md': 'a submission',
      ...(manifest === null ? {} : { 'crowdai.json': manifest }),
      ...options.files,
    })
    return new Scenario(t, app, project)
  }

  get ctx() {
    return this.t.ctx
  }

  get db() {
    return this.t.store.db
  }

  /** Delivers GitLab's tag_push hook for a push made with the git-server helpers. */
  async deliverPush(
    push: Pick<TagPush, 'ref' | 'after' | 'commitSha'>,
    options: { userId?: number; username?: string; idempotencyKey?: string } = {},
  ): Promise<HookAnswer> {
    const body = gitlabTagPushBody({
      projectId: this.projectId,
      projectPath: this.project.path,
      ref: push.ref,
      after: push.after,
      checkoutSha: push.commitSha,
      ...(options.userId === undefined ? {} : { userId: options.userId }),
      ...(options.username === undefined ? {} : { username: options.username }),
    })
    const headers: Record<string, string> = options.idempotencyKey
      ? { 'idempotency-key': options.idempotencyKey }
      : {}
    return deliver(this.app, 'gitlab', body, headers)
  }

  async pushAndDeliver(
    tag: string,
    options: { annotated?: boolean; message?: string; userId?: number; username?: string } = {},
  ) {
    const push = await this.project.pushTag(tag, {
      annotated: options.annotated ?? false,
      ...(options.message === undefined ? {} : { message: options.message }),
    })
    const answer = await this.deliverPush(push, options)
    return { push, answer }
  }

  drain(): Promise<DrainResult> {
    return drainIntake(this.ctx)
  }

  async submissions() {
    return this.db.selectFrom('submissions').selectAll().orderBy('id').execute()
  }

  async onlySubmission() {
    const all = await this.submissions()
    if (all.length !== 1) throw new Error(`expected one submission, found ${all.length}`)
    return all[0] as (typeof all)[number]
  }

  async timeline(submissionId: number) {
    return this.db
      .selectFrom('submission_events')
      .selectAll()
      .where('submission_id', '=', submissionId)
      .orderBy('id')
      .execute()
  }

  async jobs(kind: 'intake' | 'evaluate') {
    return this.db.selectFrom('jobs').selectAll().where('kind', '=', kind).orderBy('id').execute()
  }

  async charges() {
    return this.db.selectFrom('quota_charges').selectAll().orderBy('id').execute()
  }

  async close(): Promise<void> {
    await this.app.close()
    await removeProjectAndNamespace(this.project)
    await this.t.close()
  }
}
