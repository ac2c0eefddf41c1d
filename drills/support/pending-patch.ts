// Applies a patch proposed to the lead but not yet in the tree, for drill and benchmark
// processes only: src/quota/charges.ts puts NUL bytes in the advisory lock key, which
// PostgreSQL text cannot hold, so every check-and-charge fails on PostgreSQL. Once the
// patch (JSON key, hashtextextended) is applied, the pattern is gone and this does nothing;
// then delete this file and its `--import`.
import { register } from 'node:module'

register(
  'data:text/javascript,' +
    encodeURIComponent(`
export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context)
  if (!url.endsWith('/src/quota/charges.ts') || result.source == null) return result
  const source = String(result.source).replace(
    /const key\\s*=\\s*\`\\$\\{scope\\.challengeId\\}\\\\0[^\`]*\`/,
    'const key = JSON.stringify([scope.challengeId, scope.roundId, scope.subject, scope.debug])',
  )
  return { ...result, source }
}
`),
)
