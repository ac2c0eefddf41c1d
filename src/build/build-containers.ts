import type Docker from 'dockerode'
import type { Logger } from 'pino'

/**
 * Tracks the intermediate containers of a classic (non-BuildKit) engine build from its
 * output: each RUN step prints ` ---> Running in <id>` and, once done, `Removing intermediate
 * container <id>`. These ids are exactly this build's containers, which no label or filter
 * can tell apart from another build's running on the same engine.
 *
 * When a build is stopped (time limit, abort) the engine normally kills and removes the step
 * that was running once the client disconnects; `removeLeftovers` makes sure of it.
 */
export class BuildContainers {
  readonly #live = new Set<string>()
  #pending = ''

  observe(text: string): void {
    const lines = (this.#pending + text).split('\n')
    this.#pending = lines.pop() ?? ''
    for (const line of lines) {
      const running = /---> Running in ([0-9a-f]{12,64})/.exec(line)
      if (running?.[1]) this.#live.add(running[1])
      const removed = /Removing intermediate container ([0-9a-f]{12,64})/.exec(line)
      if (removed?.[1]) this.#live.delete(removed[1])
    }
  }

  get ids(): readonly string[] {
    return [...this.#live]
  }

  /** Force-removes every container of this build still present. Never throws. */
  async removeLeftovers(docker: Docker, logger: Logger): Promise<string[]> {
    const removed: string[] = []
    for (const id of this.#live) {
      try {
        await docker.getContainer(id).remove({ force: true, v: true })
        removed.push(id)
      } catch (err) {
        // 404: the engine removed it first. 409: removal already in progress.
        const status = (err as { statusCode?: number }).statusCode
        if (status !== 404 && status !== 409) {
          logger.warn(
            { containerId: id, err: String(err) },
            'could not remove a stopped build container; remove it by hand',
          )
        }
      }
    }
    this.#live.clear()
    if (removed.length > 0)
      logger.info({ containerIds: removed }, 'removed containers left by a stopped build')
    return removed
  }
}
