import { Command } from 'commander'

import { registerArchiveCommands } from '../../../src/archive/cli-commands.ts'
import { ApiClient } from '../../../src/cli/api-client.ts'
import { errorMessage } from '../../../src/domain/errors.ts'

/**
 * `proctor` with only the archive's commands, as the lead's main.ts will register them:
 * tests run it as a real subprocess.
 */
const program = new Command('proctor')
registerArchiveCommands(program, { client: (flags) => ApiClient.fromEnv(flags) })

try {
  await program.parseAsync()
} catch (err) {
  console.error(`proctor: ${errorMessage(err)}`)
  process.exitCode = 2
}
