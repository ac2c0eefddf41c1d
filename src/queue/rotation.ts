import { ProctorError } from '../domain/errors.ts'

/**
 * How one worker shares itself between the queues it serves: stride scheduling. Each queue
 * has a pass; the worker tries queues from the lowest pass up and, when it takes a job from
 * one, advances that queue's pass by 1 / weight. With weights 3 and 1 and work in both, it
 * takes three jobs from the first for each one from the second.
 *
 * An idle queue banks no credit: a queue that was tried and found empty is moved up to the
 * pass of the queue that served, and a queue seen for the first time starts there too, so
 * work arriving in a quiet queue gets its share from then on, not a burst.
 */
export class WeightedRotation {
  readonly #pass = new Map<string, number>()
  #current = 0

  /** The queues in the order to try them: lowest pass first, then the order given. */
  order(queues: readonly string[]): string[] {
    const indexed = queues.map((queue, index) => ({ queue, index, pass: this.#passOf(queue) }))
    indexed.sort((a, b) => a.pass - b.pass || a.index - b.index)
    return indexed.map((entry) => entry.queue)
  }

  /**
   * Records that `queue` served a job after the queues in `skipped` (tried first) had
   * none for this worker.
   */
  served(queue: string, weight: number, skipped: readonly string[]): void {
    const pass = this.#passOf(queue)
    for (const empty of skipped) this.#pass.set(empty, Math.max(this.#passOf(empty), pass))
    this.#current = pass
    this.#pass.set(queue, pass + 1 / weight)
  }

  #passOf(queue: string): number {
    const known = this.#pass.get(queue)
    if (known !== undefined) return known
    this.#pass.set(queue, this.#current)
    return this.#current
  }
}

/** A queue's weight for a worker: configured, else 1. Non-positive weights are refused. */
export function queueWeight(
  weights: Readonly<Record<string, number>> | undefined,
  queue: string,
): number {
  const weight = weights?.[queue] ?? 1
  if (!(weight > 0) || !Number.isFinite(weight)) {
    throw new ProctorError(
      'invalid_queue_weight',
      `queue weight for ${queue} is ${weight}; set a positive number in the worker's queueWeights`,
    )
  }
  return weight
}
