import type { Logger } from 'pino'

import { hashChallengeData, loadChallengesDir, type Challenge } from '../config/challenge.ts'

/** What a submission records of its challenge when it is accepted, so a re-run is exact. */
export interface ChallengeSnapshot {
  definition: Challenge['definition']
  dataHash: string
  /** Organizer images by phase name: immutable references (name@digest or image id). */
  graderImages: Record<string, string>
}

/**
 * Resolves an organizer phase's image to an immutable reference: builds `{ build: dir }`
 * images (and archives them) or checks a pinned digest. Supplied by the worker side, which
 * owns a Docker Engine.
 */
export type GraderImageResolver = (challenge: Challenge, phaseName: string) => Promise<string>

/** The challenges proctor knows, loaded from the configured folder. */
export class ChallengeCatalog {
  readonly #challenges: Map<string, Challenge>
  readonly #snapshots = new Map<string, Promise<ChallengeSnapshot>>()
  readonly #resolveGrader: GraderImageResolver | undefined
  readonly #log: Logger

  constructor(
    challenges: Map<string, Challenge>,
    log: Logger,
    resolveGrader?: GraderImageResolver,
  ) {
    this.#challenges = challenges
    this.#resolveGrader = resolveGrader
    this.#log = log
  }

  static fromDir(dir: string, log: Logger, resolveGrader?: GraderImageResolver): ChallengeCatalog {
    return new ChallengeCatalog(loadChallengesDir(dir), log, resolveGrader)
  }

  get(id: string): Challenge | undefined {
    return this.#challenges.get(id)
  }

  /** Ids compared ignoring case, as participants type them. */
  find(id: string): Challenge | undefined {
    return (
      this.get(id) ??
      [...this.#challenges.values()].find((c) => c.definition.id.toLowerCase() === id.toLowerCase())
    )
  }

  list(): Challenge[] {
    return [...this.#challenges.values()]
  }

  /**
   * The snapshot recorded on each accepted submission. Computed once per challenge and
   * process: hashing data and building grader images is too slow to repeat per push.
   */
  snapshot(id: string): Promise<ChallengeSnapshot> {
    let pending = this.#snapshots.get(id)
    if (!pending) {
      pending = this.#makeSnapshot(id)
      this.#snapshots.set(id, pending)
      pending.catch(() => this.#snapshots.delete(id))
    }
    return pending
  }

  async #makeSnapshot(id: string): Promise<ChallengeSnapshot> {
    const challenge = this.get(id)
    if (!challenge) throw new Error(`challenge ${id} is not loaded`)

    const started = Date.now()
    const graderImages: Record<string, string> = {}
    for (const phase of challenge.definition.phases) {
      if (phase.image === 'participant') continue
      if ('digest' in phase.image) graderImages[phase.name] = phase.image.digest
      else if (this.#resolveGrader)
        graderImages[phase.name] = await this.#resolveGrader(challenge, phase.name)
      else
        throw new Error(`challenge ${id}: no Docker Engine here to build the ${phase.name} image`)
    }
    const snapshot = {
      definition: challenge.definition,
      dataHash: hashChallengeData(challenge),
      graderImages,
    }
    this.#log.info(
      { challengeId: id, ms: Date.now() - started, graderImages },
      'challenge snapshot ready',
    )
    return snapshot
  }
}
