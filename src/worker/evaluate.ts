import { existsSync, readFileSync, statSync } from 'node:fs'
import { chown, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import path from 'node:path'

import type Docker from 'dockerode'
import type { Transaction } from 'kysely'
import type { Logger } from 'pino'

import type { AppContext } from '../app/context.ts'
import { describeBuildInputs } from '../archive/build-inputs.ts'
import { withPushPermit } from '../archive/push-pause.ts'
import type { Builder, BuildRequest } from '../build/builder.ts'
import { fetchCommit } from '../build/fetch.ts'
import { ensureImage } from '../build/pull.ts'
import { imageRepository, imageTag } from '../build/image-name.ts'
import { pushImage } from '../build/registry.ts'
import type { ChallengeSnapshot } from '../challenges/catalog.ts'
import type { PhaseDefinition } from '../config/challenge.ts'
import { errorMessage, InfrastructureError, SubmissionFailure } from '../domain/errors.ts'
import type { ReasonCode } from '../domain/reasons.ts'
import { isTerminal } from '../domain/states.ts'
import type { ClaimedJob } from '../queue/job-queue.ts'
import { classifyParticipantRun } from '../runtime/classify.ts'
import type { ContainerRuntime, PhaseRunResult } from '../runtime/container-runtime.ts'
import { LogCapture } from '../runtime/log-capture.ts'
import { makeRedactor, type Redactor } from '../runtime/redact.ts'
import type { Database, Evaluation, Submission } from '../store/schema.ts'
import { parseJson } from '../store/transaction.ts'
import { moveSubmission, noteSubmission } from '../submissions/transitions.ts'
import { DEFAULT_COMMAND, IN, LOG_LIMIT_BYTES, phaseRunRequest } from './phase-request.ts'
import { withBuildLock } from '../scale/build-lock.ts'
import { readPhaseResult, type ScoreResult } from './phase-result.ts'
import { resolveSecrets, writePhaseSecrets } from './phase-secrets.ts'
import { finishStageRun, startStageRun, storeLog } from './stage-records.ts'

export interface EvaluationDeps {
  docker: Docker
  runtime: ContainerRuntime
  builders: Record<'repo2docker' | 'dockerfile', Builder>
}

/**
 * The evaluate job: fetch → build → push → every phase → scored, for one evaluation of one
 * submission. Each stage is recorded (stage_runs, timeline, log). A participant's failure
 * ends the submission `failed` with its reason here; anything else is thrown to the worker,
 * which retries it as an infrastructure failure.
 */
export function evaluationHandler(ctx: AppContext, deps: EvaluationDeps) {
  return async function evaluate(job: ClaimedJob, signal: AbortSignal, log: Logger): Promise<void> {
    const run = new EvaluationRun(ctx, deps, job, signal, log)
    await run.execute()
  }
}

class EvaluationRun {
  readonly #ctx: AppContext
  readonly #deps: EvaluationDeps
  readonly #job: ClaimedJob
  readonly #signal: AbortSignal
  readonly #log: Logger
  readonly #actor: string
  #submission!: Submission
  #snapshot!: ChallengeSnapshot
  #evaluationId!: number
  /** A re-run: a new evaluation of an archived image that never changes the submission. */
  #rerun = false
  #workDir = ''
  #secrets = new Map<string, string>()
  /** Every captured log passes through it: secret values never reach the store. */
  #redactor: Redactor = makeRedactor([])

  constructor(
    ctx: AppContext,
    deps: EvaluationDeps,
    job: ClaimedJob,
    signal: AbortSignal,
    log: Logger,
  ) {
    this.#ctx = ctx
    this.#deps = deps
    this.#job = job
    this.#signal = signal
    this.#log = log
    this.#actor = `worker:${job.id}/${job.attempt}`
  }

  get #now() {
    return this.#ctx.clock.now()
  }

  async execute(): Promise<void> {
    if (!(await this.#load())) return

    this.#workDir = await mkdtemp(
      path.join(await this.#ensureWorkRoot(), `s${this.#submission.id}-e${this.#evaluationId}-`),
    )
    try {
      const image = this.#rerun ? await this.#archivedImage() : await this.#obtainImage()
      const score = await this.#runPhases(image)
      await this.#finishScored(score)
    } catch (err) {
      if (err instanceof SubmissionFailure) {
        await this.#finishFailed(err)
        return
      }
      throw err
    } finally {
      // Work directories go whatever happened: they hold participant code and outputs.
      await rm(this.#workDir, { recursive: true, force: true }).catch((err: unknown) =>
        this.#log.warn(
          { err: errorMessage(err), dir: this.#workDir },
          'could not remove a work directory; remove it by hand',
        ),
      )
    }
  }

  async #ensureWorkRoot(): Promise<string> {
    const root = this.#ctx.config.builder.workDir
    await mkdir(root, { recursive: true })
    return root
  }

  /** Loads the submission; false when there is nothing left to do (cancelled meanwhile). */
  async #load(): Promise<boolean> {
    const { db } = this.#ctx.store
    const submissionId = this.#job.submissionId
    const evaluationId = this.#job.evaluationId
    if (submissionId === null || evaluationId === null) {
      throw new InfrastructureError(
        `evaluate job ${this.#job.id} names no submission or evaluation`,
      )
    }
    this.#submission = await db
      .selectFrom('submissions')
      .selectAll()
      .where('id', '=', submissionId)
      .executeTakeFirstOrThrow()
    const evaluation = await db
      .selectFrom('evaluations')
      .selectAll()
      .where('id', '=', evaluationId)
      .executeTakeFirstOrThrow()
    this.#evaluationId = evaluationId
    this.#rerun = evaluation.kind === 'rerun'

    const ended = this.#rerun
      ? ['scored', 'failed', 'cancelled'].includes(evaluation.state)
      : isTerminal(this.#submission.state)
    if (ended) {
      this.#log.info(
        { state: this.#submission.state, evaluation: evaluation.state },
        'already ended; nothing to evaluate',
      )
      await this.#write((trx) => this.#ctx.queue.complete(trx, this.#job))
      return false
    }

    this.#snapshot = await this.#snapshotFor(evaluation)
    await this.#checkData()
    await this.#write((trx) =>
      trx
        .updateTable('evaluations')
        .set({ state: 'running', started_at: this.#now.toISOString() })
        .where('id', '=', evaluationId)
        .execute(),
    )
    return true
  }

  /**
   * The rules an evaluation runs with: the snapshot recorded when the submission was
   * accepted, or, for a re-run that asks for them, the challenge as loaded now (recorded on
   * the evaluation, so the re-run stays auditable).
   */
  async #snapshotFor(evaluation: Evaluation): Promise<ChallengeSnapshot> {
    const s = this.#submission
    if (evaluation.rules === 'current') {
      const current = await this.#ctx.challenges.snapshot(this.#snapshotId(s))
      await this.#write((trx) =>
        trx
          .updateTable('evaluations')
          .set({
            challenge_snapshot_json: JSON.stringify(current.definition),
            data_hash: current.dataHash,
            grader_image: JSON.stringify(current.graderImages),
          })
          .where('id', '=', evaluation.id)
          .execute(),
      )
      return current
    }

    const definition = parseJson<ChallengeSnapshot['definition'] | null>(
      s.challenge_snapshot_json,
      null,
    )
    if (!definition || !s.data_hash)
      throw new InfrastructureError(`submission ${s.id} has no challenge snapshot`)
    return {
      definition,
      dataHash: s.data_hash,
      graderImages: parseJson<Record<string, string>>(s.grader_image, {}),
    }
  }

  #snapshotId(s: Submission): string {
    if (!s.challenge_id) throw new InfrastructureError(`submission ${s.id} has no challenge`)
    return s.challenge_id
  }

  /** A re-run evaluates the archived image by digest, pulled from the registry if needed. */
  async #archivedImage(): Promise<string> {
    const s = this.#submission
    const reference = s.image_ref
    if (s.archive !== 'archived' || !reference?.includes('@sha256:')) {
      throw new SubmissionFailure(
        'infrastructure',
        `submission ${s.id} cannot be re-run: its image is ${s.archive === 'expired' ? 'expired (removed by the retention policy)' : `not archived (archive: ${s.archive})`}`,
      )
    }
    const how = await this.#stage('pull', () =>
      ensureImage(this.#deps.docker, reference, this.#signal),
    )
    await this.#write(async (trx) => {
      await trx
        .updateTable('evaluations')
        .set({ image_ref: reference })
        .where('id', '=', this.#evaluationId)
        .execute()
      await this.#noteRerun(
        trx,
        `image ${how === 'pulled' ? 'pulled from the archive' : 'already on this worker'}`,
      )
    })
    return reference
  }

  /** The worker's copy of the hidden data must be the one recorded on the submission. */
  async #checkData(): Promise<void> {
    const id = this.#snapshot.definition.id
    const local = await this.#ctx.challenges.snapshot(id)
    if (local.dataHash !== this.#submission.data_hash) {
      throw new InfrastructureError(
        `this worker's data for challenge ${id} (${local.dataHash}) differs from the submission's (${this.#submission.data_hash}); ` +
          'sync the challenge data on this host',
      )
    }
  }

  // ─── fetch, build, push ────────────────────────────────────────────────────────────────

  /** An immutable image reference to run: name@digest when archived, else the local id. */
  async #obtainImage(): Promise<string> {
    const builder = this.#snapshot.definition.build.builder
    const s = this.#submission
    const key = {
      forge: s.forge,
      projectId: s.project_id,
      commitSha: s.commit_sha,
      builder,
      builderVersion: await this.#deps.builders[builder].version(),
    }
    // Two workers asked for the same image at once build it once: the second waits here,
    // then finds the first one's archive and reuses it.
    return withBuildLock(this.#ctx.store, key, this.#signal, () => this.#obtainImageLocked())
  }

  async #obtainImageLocked(): Promise<string> {
    const reused = await this.#findArchivedImage()
    if (reused) {
      await this.#write((trx) =>
        moveSubmission(trx, this.#submission.id, {
          to: 'evaluating',
          from: ['queued', 'building'],
          message: `image reused from submission ${reused.id} (same commit and builder); no build needed`,
          actor: this.#actor,
          at: this.#now,
          evaluationId: this.#evaluationId,
          set: {
            image_ref: reused.image_ref,
            image_digest: reused.image_digest,
            image_reused_from: reused.id,
            builder: reused.builder,
            builder_version: reused.builder_version,
            archive: 'archived',
            build_inputs_json: reused.build_inputs_json,
            stage: 'predict',
          },
        }),
      )
      return reused.image_ref ?? ''
    }

    await this.#write((trx) =>
      moveSubmission(trx, this.#submission.id, {
        to: 'building',
        from: ['queued', 'building'],
        message: `fetching commit ${this.#submission.commit_sha.slice(0, 12)}`,
        actor: this.#actor,
        at: this.#now,
        evaluationId: this.#evaluationId,
        set: { stage: 'fetch' },
      }),
    )
    const repoDir = path.join(this.#workDir, 'repo')
    await this.#deadline(FETCH_TIMEOUT_MS / 1000, 'infrastructure')
    await this.#stage('fetch', () => this.#fetch(repoDir))
    await this.#deadline(this.#snapshot.definition.build.timeSeconds + PUSH_SECONDS, 'build_failed')
    const imageId = await this.#stage('build', () => this.#build(repoDir))
    return this.#stage('push', () => this.#push(imageId))
  }

  async #findArchivedImage(): Promise<Submission | undefined> {
    const builder = this.#snapshot.definition.build.builder
    const s = this.#submission
    return this.#ctx.store.db
      .selectFrom('submissions')
      .selectAll()
      .where('forge', '=', s.forge)
      .where('project_id', '=', s.project_id)
      .where('commit_sha', '=', s.commit_sha)
      .where('builder', '=', builder)
      .where('builder_version', '=', await this.#deps.builders[builder].version())
      .where('archive', '=', 'archived')
      .where('image_digest', 'is not', null)
      .where('id', '!=', s.id)
      .orderBy('id', 'asc')
      .executeTakeFirst()
  }

  async #fetch(repoDir: string): Promise<void> {
    const forge = this.#ctx.config.forges.find((f) => f.id === this.#submission.forge)
    if (!forge)
      throw new InfrastructureError(
        `forge ${this.#submission.forge} is not configured on this worker`,
      )
    const cloneUrl = forge.cloneUrl.replace('{path}', this.#submission.project_path)
    await fetchCommit({
      cloneUrl,
      commitSha: this.#submission.commit_sha,
      dir: repoDir,
      timeoutMs: FETCH_TIMEOUT_MS,
      maxBytes: 1024 * 1024 * 1024,
      signal: this.#signal,
    })
  }

  async #build(repoDir: string): Promise<string> {
    const build = this.#snapshot.definition.build
    const builder = this.#deps.builders[build.builder]
    const s = this.#submission
    await this.#write((trx) =>
      noteSubmission(trx, s.id, {
        message: `building the image with ${builder.name}`,
        stage: 'build',
        actor: this.#actor,
        at: this.#now,
        evaluationId: this.#evaluationId,
      }),
    )

    const capture = new LogCapture(LOG_LIMIT_BYTES)
    const localName = `proctor-build/${imageRepository('', s.challenge_id ?? 'none', s.project_path).replace(/^\/+/, '')}:${imageTag(s.id, s.commit_sha)}`
    try {
      const request: BuildRequest = {
        contextDir: repoDir,
        imageName: localName,
        labels: {
          'proctor.submission': String(s.id),
          'proctor.challenge': s.challenge_id ?? '',
          'proctor.commit': s.commit_sha,
          'proctor.version': PROCTOR_VERSION,
        },
        timeoutMs: build.timeSeconds * 1000,
        memoryBytes: build.memoryMb * 1024 * 1024,
        maxImageBytes: build.maxImageMb * 1024 * 1024,
        onLog: (text) => capture.write(text),
        signal: this.#signal,
      }
      const result = await builder.build(request)
      // What a later `proctor verify` needs to rebuild it the same way.
      const inputs = await describeBuildInputs(this.#deps.docker, result, request, {
        contextDir: repoDir,
        proctorVersion: PROCTOR_VERSION,
      })
      await this.#write((trx) =>
        trx
          .updateTable('submissions')
          .set({
            builder: result.builder,
            builder_version: result.builderVersion,
            image_ref: result.imageId,
            archive: 'pending',
            build_inputs_json: JSON.stringify(inputs),
          })
          .where('id', '=', s.id)
          .execute(),
      )
      if (result.buildpack) capture.write(`\n[proctor] repo2docker chose ${result.buildpack}\n`)
      for (const note of result.notes) capture.write(`[proctor] ${note}\n`)
      return result.imageId
    } finally {
      await this.#saveLog('build', capture)
    }
  }

  async #push(imageId: string): Promise<string> {
    const s = this.#submission
    const registry = this.#ctx.config.registry
    const repository = imageRepository(registry.namespace, s.challenge_id ?? 'none', s.project_path)
    await this.#write((trx) =>
      noteSubmission(trx, s.id, {
        message: `archiving the image in ${registry.address}`,
        stage: 'push',
        actor: this.#actor,
        at: this.#now,
        evaluationId: this.#evaluationId,
      }),
    )
    try {
      // Pushes wait while the registry is being garbage-collected; the wait moves this
      // stage's deadline back, so it never fails a submission.
      const pushed = await withPushPermit(
        this.#ctx,
        () =>
          pushImage(this.#deps.docker, {
            imageId,
            registry: registry.address,
            repository,
            tag: imageTag(s.id, s.commit_sha),
            auth:
              registry.username && registry.password
                ? { username: registry.username, password: registry.password }
                : undefined,
            signal: this.#signal,
          }),
        { signal: this.#signal, job: this.#job },
      )
      await this.#write((trx) =>
        trx
          .updateTable('submissions')
          .set({
            image_ref: pushed.reference,
            image_digest: pushed.digest,
            archive: 'archived',
            archive_error: null,
          })
          .where('id', '=', s.id)
          .execute(),
      )
      return pushed.reference
    } catch (err) {
      // The score still counts: evaluate from the local image id and keep it until an
      // archive retry succeeds (`proctor archive retry`).
      const message = errorMessage(err)
      this.#log.error(
        { err: message },
        'could not archive the image; evaluating from the local image, retry the archive later',
      )
      await this.#write((trx) =>
        trx
          .updateTable('submissions')
          .set({ archive: 'failed', archive_error: message })
          .where('id', '=', s.id)
          .execute(),
      )
      return imageId
    }
  }

  // ─── phases ────────────────────────────────────────────────────────────────────────────

  async #runPhases(participantImage: string): Promise<ScoreResult> {
    const s = this.#submission
    // The row, not the copy loaded at the start: a reused image already moved it on.
    const { state } = await this.#ctx.store.db
      .selectFrom('submissions')
      .select('state')
      .where('id', '=', s.id)
      .executeTakeFirstOrThrow()
    if (!this.#rerun && state !== 'evaluating') {
      await this.#write((trx) =>
        moveSubmission(trx, s.id, {
          to: 'evaluating',
          from: ['building', 'queued'],
          message: 'image ready; running the phases',
          actor: this.#actor,
          at: this.#now,
          evaluationId: this.#evaluationId,
        }),
      )
    }

    const catalogEntry = this.#ctx.challenges.get(this.#snapshot.definition.id)
    if (!catalogEntry)
      throw new InfrastructureError(
        `challenge ${this.#snapshot.definition.id} is not loaded on this worker`,
      )
    this.#secrets = resolveSecrets(this.#snapshot.definition, catalogEntry.dir)
    this.#redactor = makeRedactor([...this.#secrets.values()])

    let previousOutput: string | null = null
    let score: ScoreResult | null = null
    for (const phase of this.#snapshot.definition.phases) {
      const outputDir = path.join(this.#workDir, 'out', phase.name)
      await mkdir(outputDir, { recursive: true })
      // Containers run as uid 1000: the output folder must be theirs to write.
      await chown(outputDir, 1000, 1000)
      await chown(path.dirname(outputDir), 1000, 1000)

      const isParticipant = phase.image === 'participant'
      const image = isParticipant ? participantImage : this.#snapshot.graderImages[phase.name]
      if (!image) throw new InfrastructureError(`no image recorded for phase ${phase.name}`)
      const secretsDir = isParticipant
        ? null
        : await writePhaseSecrets(
            phase,
            this.#secrets,
            path.join(this.#workDir, 'secrets', phase.name),
          )
      const mounts = isParticipant
        ? [{ hostPath: catalogEntry.inputsDir, containerPath: IN.input, readOnly: true }]
        : [
            ...(previousOutput
              ? [{ hostPath: previousOutput, containerPath: IN.predictions, readOnly: true }]
              : []),
            { hostPath: catalogEntry.labelsDir, containerPath: IN.labels, readOnly: true },
            ...(secretsDir
              ? [{ hostPath: secretsDir, containerPath: IN.secrets, readOnly: true }]
              : []),
          ]
      // Checked before the clock starts: a missing entry point is the participant's to fix.
      if (isParticipant) await this.#checkEntryPoint(image, phase.command ?? DEFAULT_COMMAND)
      await this.#deadline(
        phase.limits.timeSeconds,
        isParticipant ? 'time_limit' : 'scoring_failed',
      )

      await this.#write((trx) =>
        noteSubmission(trx, s.id, {
          message: `${this.#rerun ? `re-run ${this.#evaluationId}: ` : ''}running phase ${phase.name}`,
          stage: this.#rerun ? undefined : phase.name,
          kind: 'stage',
          keepStatus: this.#rerun,
          actor: this.#actor,
          at: this.#now,
          evaluationId: this.#evaluationId,
        }),
      )
      const result = await this.#stage(
        phase.name,
        () => this.#runPhase(phase, image, mounts, outputDir),
        (r) => ({
          outcome: r.outcome,
          cpuMs: r.cpuMs,
          peakMemoryBytes: r.peakMemoryBytes,
          detail: { exitCode: r.exitCode, outputBytes: r.outputBytes },
        }),
      )

      if (isParticipant) {
        const failure = classifyParticipantRun(result, phase.limits)
        if (failure) throw new SubmissionFailure(failure.code, failure.message)
        if ((await readdir(outputDir)).length === 0) {
          throw new SubmissionFailure(
            'output_missing',
            `phase ${phase.name} wrote nothing to ${IN.output} ($PROCTOR_OUTPUT)`,
          )
        }
      } else {
        score = readPhaseResult(phase.name, outputDir, result) ?? score
      }
      previousOutput = outputDir
    }
    if (!score)
      throw new SubmissionFailure(
        'scoring_failed',
        'no phase wrote scores.json; the organizers have been told',
      )
    return score
  }

  async #runPhase(
    phase: PhaseDefinition,
    image: string,
    mounts: { hostPath: string; containerPath: string; readOnly: boolean }[],
    outputDir: string,
  ): Promise<PhaseRunResult> {
    const isParticipant = phase.image === 'participant'
    const result = await this.#deps.runtime.runPhase({
      ...phaseRunRequest({
        phase,
        image,
        mounts,
        outputDir,
        debug: this.#submission.debug === 1,
        labels: {
          'proctor.submission': String(this.#submission.id),
          'proctor.evaluation': String(this.#evaluationId),
          'proctor.job': String(this.#job.id),
          'proctor.attempt': String(this.#job.attempt),
        },
      }),
      onProgress: isParticipant
        ? undefined
        : (fraction, message) => this.#reportProgress(phase.name, fraction, message),
      redactor: this.#redactor,
      signal: this.#signal,
    })
    await this.#progressWrites
    await this.#write((trx) =>
      storeLog(trx, {
        evaluationId: this.#evaluationId,
        stage: phase.name,
        text: result.log.text,
        bytesTotal: result.log.bytesTotal,
        bytesElided: result.log.bytesElided,
        at: this.#now,
      }),
    )
    return result
  }

  /**
   * The participant phase's command must exist and be executable in the image. Looked up in
   * the image's file system without running it, so no time limit is spent on it.
   */
  async #checkEntryPoint(image: string, command: readonly string[]): Promise<void> {
    const entry = command[0]
    // A bare name (`python3`) is found on PATH at run time; only paths can be checked here.
    if (!entry?.includes('/')) return
    const info = await this.#deps.docker.getImage(image).inspect()
    const workingDir = info.Config.WorkingDir || '/'
    const file = path.posix.isAbsolute(entry) ? entry : path.posix.join(workingDir, entry)
    const stat = await this.#deps.runtime.statImageFile(image, file)
    if (!stat || stat.isDirectory) {
      throw new SubmissionFailure(
        'entrypoint_missing',
        `${entry} was not found in your image (looked for ${file}; the image's working directory is ${workingDir}). ` +
          'Add it to the repository and make sure your Dockerfile copies it there.',
      )
    }
    if (!stat.isExecutable && !stat.linkTarget) {
      throw new SubmissionFailure(
        'entrypoint_missing',
        `${entry} is in your image but not executable: run \`git update-index --chmod=+x ${entry.replace(/^\.\//, '')}\`, commit and push a new tag`,
      )
    }
  }

  /** Organizer progress lines become timeline entries, at most one a second, in order. */
  #progressWrites: Promise<void> = Promise.resolve()
  #lastProgressAt = 0

  #reportProgress(phase: string, fraction: number, message: string): void {
    const now = Date.now()
    if (now - this.#lastProgressAt < 1000 && fraction < 1) return
    this.#lastProgressAt = now
    const text = `${phase}: ${Math.round(fraction * 100)}%${message ? ` ${message}` : ''}`
    this.#progressWrites = this.#progressWrites
      .then(() =>
        this.#write((trx) =>
          noteSubmission(trx, this.#submission.id, {
            message: text,
            kind: 'progress',
            keepStatus: this.#rerun,
            actor: this.#actor,
            at: this.#now,
            evaluationId: this.#evaluationId,
          }),
        ),
      )
      .catch((err: unknown) =>
        this.#log.warn({ err: errorMessage(err) }, 'could not record progress'),
      )
  }

  // ─── endings ───────────────────────────────────────────────────────────────────────────

  async #finishScored(score: ScoreResult): Promise<void> {
    const decimals = this.#snapshot.definition.scoring.decimals
    const details = score.details === undefined ? null : JSON.stringify(score.details)
    await this.#write(async (trx) => {
      if (this.#rerun) {
        await this.#noteRerun(
          trx,
          `scored ${score.score.toFixed(decimals)} (the first result is unchanged)`,
        )
      } else
        await moveSubmission(trx, this.#submission.id, {
          to: 'scored',
          from: ['evaluating'],
          message: `scored ${score.score.toFixed(decimals)}`,
          actor: this.#actor,
          at: this.#now,
          evaluationId: this.#evaluationId,
          set: {
            score: score.score,
            score_secondary: score.scoreSecondary,
            score_details_json: details,
            stage: null,
          },
        })
      await trx
        .updateTable('evaluations')
        .set({
          state: 'scored',
          score: score.score,
          score_secondary: score.scoreSecondary,
          score_details_json: details,
          finished_at: this.#now.toISOString(),
        })
        .where('id', '=', this.#evaluationId)
        .execute()
      await this.#ctx.queue.complete(trx, this.#job)
    })
  }

  async #finishFailed(failure: SubmissionFailure): Promise<void> {
    const code = failure.code as import('../domain/reasons.ts').ReasonCode
    this.#log.info({ code, reason: failure.message }, 'submission failed')
    await this.#write(async (trx) => {
      if (this.#rerun) {
        await this.#noteRerun(trx, `failed (${code}): ${failure.message}`)
      } else
        await moveSubmission(trx, this.#submission.id, {
          to: 'failed',
          reasonCode: code,
          message: failure.message,
          actor: this.#actor,
          at: this.#now,
          evaluationId: this.#evaluationId,
        })
      await trx
        .updateTable('evaluations')
        .set({
          state: 'failed',
          reason_code: code,
          reason_message: failure.message,
          finished_at: this.#now.toISOString(),
        })
        .where('id', '=', this.#evaluationId)
        .execute()
      await this.#ctx.queue.complete(trx, this.#job)
    })
  }

  // ─── helpers ───────────────────────────────────────────────────────────────────────────

  /**
   * The stage's deadline, for the reaper: its own limit plus a margin. It backs up the limits
   * the stage enforces itself (the runtime's clock, the builder's timeout) for a worker that
   * hangs; the margin covers image pulls and container start-up.
   */
  async #deadline(seconds: number, reason: ReasonCode): Promise<void> {
    const at = new Date(this.#now.getTime() + (seconds + DEADLINE_MARGIN_SECONDS) * 1000)
    await this.#write((trx) => this.#ctx.queue.setDeadline(trx, this.#job, at, reason))
  }

  /** A re-run's outcome goes on the timeline only: the submission's status stays. */
  #noteRerun(trx: Transaction<Database>, message: string): Promise<void> {
    return noteSubmission(trx, this.#submission.id, {
      message: `re-run ${this.#evaluationId} ${message}`,
      actor: this.#actor,
      at: this.#now,
      evaluationId: this.#evaluationId,
      kind: 'note',
      keepStatus: true,
    })
  }

  /** Every write carries the job's lease: a worker that lost it writes nothing. */
  #write<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.#ctx.queue.withLease(this.#job, fn)
  }

  /** Runs one stage with its stage_runs row, whatever the outcome. */
  async #stage<T>(
    stage: string,
    fn: () => Promise<T>,
    describe?: (result: T) => {
      outcome: string
      cpuMs?: number | null
      peakMemoryBytes?: number | null
      detail?: unknown
    },
  ): Promise<T> {
    const started = performance.now()
    const runId = await this.#write((trx) =>
      startStageRun(trx, {
        evaluationId: this.#evaluationId,
        attempt: this.#job.attempt,
        stage,
        at: this.#now,
      }),
    )
    let outcome = 'error'
    let described: ReturnType<NonNullable<typeof describe>> | undefined
    try {
      const result = await fn()
      described = describe?.(result)
      outcome = described?.outcome ?? 'ok'
      return result
    } catch (err) {
      outcome = err instanceof SubmissionFailure ? err.code : 'error'
      throw err
    } finally {
      const wallMs = performance.now() - started
      this.#log.info({ stage, ms: Math.round(wallMs), outcome }, 'stage finished')
      await this.#write((trx) =>
        finishStageRun(trx, runId, { at: this.#now, wallMs, ...described, outcome }),
      ).catch((err: unknown) =>
        this.#log.warn({ err: errorMessage(err), stage }, 'could not record the stage run'),
      )
    }
  }

  async #saveLog(stage: string, capture: LogCapture): Promise<void> {
    const captured = capture.finish()
    await this.#write((trx) =>
      storeLog(trx, {
        evaluationId: this.#evaluationId,
        stage,
        text: captured.text,
        bytesTotal: captured.bytesTotal,
        bytesElided: captured.bytesElided,
        at: this.#now,
      }),
    ).catch((err: unknown) =>
      this.#log.warn({ err: errorMessage(err), stage }, 'could not store the log'),
    )
  }
}

const PROCTOR_VERSION = readProctorVersion()

const FETCH_TIMEOUT_MS = 120_000
/** Time allowed for archiving an image, added to the build's own limit. */
const PUSH_SECONDS = 600
const DEADLINE_MARGIN_SECONDS = 120

function readProctorVersion(): string {
  const file = path.resolve(import.meta.dirname, '../../package.json')
  if (!existsSync(file) || !statSync(file).isFile()) return 'unknown'
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version
}

export { PROCTOR_VERSION }
