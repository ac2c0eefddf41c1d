import { Command, CommanderError } from 'commander'

import { registerArchiveCommands } from '../archive/cli-commands.ts'
import { registerScaleCommands } from '../scale/cli-commands.ts'
import { errorMessage } from '../domain/errors.ts'
import { addActionCommands } from './commands/action-commands.ts'
import { addLocalCommands } from './commands/local-commands.ts'
import { addProcessCommands } from './commands/process-commands.ts'
import { addStatusCommands } from './commands/status-commands.ts'
import { clientFor } from './commands/shared.ts'
import { addSubmissionCommands } from './commands/submission-commands.ts'
import { exitCodeFor } from './exit-codes.ts'

/**
 * The `proctor` command. Human output by default, `--json` for scripts. Exit codes (see
 * exit-codes.ts and docs/operating.md): 0 done, 1 the operation failed, 2 usage or
 * configuration, 3 proctor's API unreachable.
 *
 * `serve`, `worker`, `migrate`, `demo` and `challenge validate` run locally; every other
 * command talks to the API (PROCTOR_API_URL, PROCTOR_API_TOKEN).
 */
const program = new Command('proctor')
  .description('Turns a tag push into a sandboxed, scored and archived evaluation.')
  .option('-c, --config <file>', 'configuration file', process.env.PROCTOR_CONFIG ?? 'proctor.yaml')
  // Commander's own usage errors throw instead of exiting, so they get exit code 2.
  .exitOverride()
  .showHelpAfterError('(run `proctor help` for the commands)')

addProcessCommands(program)
addSubmissionCommands(program)
addActionCommands(program)
addStatusCommands(program)
addLocalCommands(program)
// rerun, verify, storage, retention, gc, publish: src/archive/cli-commands.ts
registerArchiveCommands(program, { client: clientFor })
// host, sweep: src/scale/cli-commands.ts
registerScaleCommands(program)

try {
  await program.parseAsync()
} catch (err) {
  // Commander has already printed its usage error.
  if (!(err instanceof CommanderError)) {
    console.error(`proctor: ${errorMessage(err)}`)
  }
  process.exitCode = exitCodeFor(err)
}
