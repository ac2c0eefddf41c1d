import path from 'node:path'

import { defineConfig, mergeConfig } from 'vitest/config'

import base from '../../vitest.config.ts'

/**
 * Runs the queue and quota suites on SQLite and PostgreSQL by handing them
 * support/all-stores.ts wherever they import test/queue/support/stores.ts:
 *
 *   PROCTOR_TEST_POSTGRES_URL=$(bash scripts/postgres.sh url) \
 *     npx vitest run --config test/scale/conformance.config.ts test/queue test/quota
 */
const STORES = path.resolve(import.meta.dirname, '../queue/support/stores.ts')
const ALL_STORES = path.resolve(import.meta.dirname, 'support/all-stores.ts')

export default mergeConfig(
  base,
  defineConfig({
    plugins: [
      {
        name: 'proctor-all-stores',
        enforce: 'pre',
        resolveId(source, importer) {
          if (!importer || importer === ALL_STORES || !source.endsWith('support/stores.ts')) return
          if (path.resolve(path.dirname(importer), source) === STORES) return ALL_STORES
        },
      },
    ],
  }),
)
