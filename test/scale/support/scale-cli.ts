import { Command } from 'commander'

import { registerScaleCommands } from '../../../src/scale/cli-commands.ts'

/** `proctor` with only the scale commands, as main.ts will have them once wired. */
const program = new Command('proctor').option(
  '-c, --config <file>',
  'configuration file',
  'proctor.yaml',
)
registerScaleCommands(program)
await program.parseAsync()
