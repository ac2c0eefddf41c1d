import type { ProctorConfig } from '../config/proctor-config.ts'
import { makeRedactor, type Redactor } from '../runtime/redact.ts'

/**
 * Every secret the configuration holds: forge API tokens and hook secrets, platform keys,
 * webhook secrets, API tokens, the registry password. Reporting passes each message it
 * stores, logs or posts (an error, an issue body) through a redactor made of these, so a
 * secret echoed back by a platform or printed into a log never travels further.
 */
export function configuredSecrets(config: ProctorConfig): string[] {
  const platform = config.platform
  return [
    ...config.forges.flatMap((forge) => [
      ...forge.hookSecrets,
      ...(forge.apiToken ? [forge.apiToken] : []),
    ]),
    ...(platform.crowdai
      ? [
          platform.crowdai.lookupKey,
          ...Object.values(platform.crowdai.challenges).map((c) => c.organizerKey),
        ]
      : []),
    ...(platform.webhook?.endpoints.map((e) => e.secret) ?? []),
    ...config.api.tokens.map((t) => t.token),
    ...(config.registry.password ? [config.registry.password] : []),
  ]
}

export function secretRedactor(config: ProctorConfig, extra: readonly string[] = []): Redactor {
  return makeRedactor([...configuredSecrets(config), ...extra])
}
