/** Time comes from an injected clock so tests can move it. Stored times are ISO-8601 UTC. */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = { now: () => new Date() }

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  #now: number

  constructor(start: Date | string = '2026-01-01T00:00:00Z') {
    this.#now = new Date(start).getTime()
  }

  now(): Date {
    return new Date(this.#now)
  }

  set(at: Date | string): void {
    this.#now = new Date(at).getTime()
  }

  advance(ms: number): void {
    this.#now += ms
  }
}

export function iso(date: Date): string {
  return date.toISOString()
}
