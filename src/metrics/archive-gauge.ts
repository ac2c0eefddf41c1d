import type { Logger } from 'pino'
import { Gauge, type Registry } from 'prom-client'

import type { AppContext } from '../app/context.ts'
import { archiveBytes } from '../archive/accounting.ts'
import { errorMessage } from '../domain/errors.ts'

/**
 * `proctor_archive_bytes`: what the registry holds for every image proctor knows (archived
 * submissions and grader images), each shared blob counted once (src/archive/accounting.ts).
 * The first scrape reads the images' manifests from the registry; later ones read the cached
 * manifests from the database. When the registry cannot be read the series is left out of
 * that scrape, so the rest of /metrics still answers.
 */
export function registerArchiveGauge(registry: Registry, ctx: AppContext, log: Logger): void {
  new Gauge({
    name: 'proctor_archive_bytes',
    help: 'Bytes the image archive holds for the images proctor knows, each shared layer counted once.',
    registers: [registry],
    async collect() {
      try {
        this.set(await archiveBytes(ctx))
      } catch (err) {
        this.reset()
        log.warn(
          { err: errorMessage(err) },
          'could not measure the archive for /metrics; is the registry up?',
        )
      }
    },
  })
}
