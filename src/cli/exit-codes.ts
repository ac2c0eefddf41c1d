import { CommanderError } from 'commander'

import { ProctorError } from '../domain/errors.ts'

/**
 * The `proctor` command's exit codes, for scripts:
 *
 * | code | meaning |
 * | --- | --- |
 * | 0 | done |
 * | 1 | the operation failed: proctor refused it (404, 409, 5xx), a followed submission ended without a score, the demo did not score |
 * | 2 | usage or configuration: unknown command or option, bad argument, no token, a token refused (401, 403), a bad request (400), an invalid proctor.yaml or challenge file |
 * | 3 | proctor's API did not answer |
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3 } as const

export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage
  if (!(err instanceof ProctorError)) return EXIT.failed
  if (err.code === 'api_unreachable') return EXIT.unreachable
  const status = /^http_(\d{3})$/.exec(err.code)?.[1]
  if (status === undefined) return err.code === 'operation_failed' ? EXIT.failed : EXIT.usage
  return ['400', '401', '403'].includes(status) ? EXIT.usage : EXIT.failed
}
