/**
 * Coalesces fetches of one mirror: while a fetch runs, every new request shares ONE
 * follow-up fetch started after it ends. A caller therefore always gets a fetch that began
 * after its own request (it sees every push made before it asked), and N concurrent callers
 * cost at most two fetches. Also keeps two git processes from fetching into one repository
 * at once (ref lock errors).
 */
export class FetchGate {
  #running: Promise<void> | null = null
  #queued: Promise<void> | null = null

  request(fetch: () => Promise<void>): Promise<void> {
    if (this.#queued) return this.#queued
    if (!this.#running) return this.#start(fetch)
    const queued = this.#running
      .catch(() => undefined)
      .then(() => {
        this.#queued = null
        return this.#start(fetch)
      })
    this.#queued = queued
    return queued
  }

  /** Resolves once no fetch runs or waits (a fetch failing counts as over). */
  async idle(): Promise<void> {
    while (this.#running || this.#queued) {
      await (this.#queued ?? this.#running)?.catch(() => undefined)
    }
  }

  #start(fetch: () => Promise<void>): Promise<void> {
    const run = fetch().finally(() => {
      if (this.#running === run) this.#running = null
    })
    this.#running = run
    return run
  }
}
