import type { Logger } from 'pino'

import type { ProctorConfig } from '../config/proctor-config.ts'
import type { Clock } from '../domain/clock.ts'
import type { Store } from '../store/database.ts'
import { CrowdaiPlatform } from './crowdai.ts'
import { EmbeddedPlatform } from './embedded.ts'
import type { Platform } from './platform.ts'
import { secretRedactor } from './secrets.ts'
import { WebhookPlatform } from './webhook.ts'

/** The platform adapter `platform.kind` names. */
export function createPlatform(
  config: ProctorConfig,
  deps: { store: Store; clock: Clock; log: Logger },
): Platform {
  const context = { forges: config.forges, publicUrl: config.server.publicUrl }
  const platform = config.platform
  switch (platform.kind) {
    case 'embedded':
      return new EmbeddedPlatform()
    case 'crowdai': {
      if (!platform.crowdai)
        throw new Error('platform.crowdai is required when platform.kind is crowdai')
      const redactor = secretRedactor(config)
      return new CrowdaiPlatform(platform.crowdai, {
        ...deps,
        context,
        redact: (t) => redactor.redact(t),
      })
    }
    case 'webhook':
      if (!platform.webhook)
        throw new Error('platform.webhook is required when platform.kind is webhook')
      return new WebhookPlatform(platform.webhook, { ...deps, context })
  }
}
