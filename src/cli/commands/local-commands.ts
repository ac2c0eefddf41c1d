import { existsSync } from 'node:fs'

import type { Command } from 'commander'

import { parseConfig, type ProctorConfig } from '../../config/proctor-config.ts'
import { ProctorError } from '../../domain/errors.ts'
import { formatDuration } from '../format.ts'
import { configOf, printJson, rootOf } from './shared.ts'

/**
 * Commands that run on this machine without a proctor server:
 *
 *   proctor challenge test examples/challenges/iris.yaml
 *   proctor local-run ./my-repo --challenge iris.yaml --inputs ./sample --output ./out
 *   proctor token create --name alice --scope participant --participant alice
 */
export function addLocalCommands(program: Command): void {
  const challenge = program.commands.find((c) => c.name() === 'challenge')
  if (!challenge) throw new Error('the challenge command must be registered first')

  challenge
    .command('test')
    .argument('<file>')
    .description("submit the challenge's baseline through the real path and show its score")
    .action(async function test(this: Command, file: string) {
      const [{ testChallenge }, { createLogger }] = await Promise.all([
        import('../../challenges/challenge-test.ts'),
        import('../../app/logger.ts'),
      ])
      const submission = await testChallenge(file, {
        base: baseConfig(this),
        log: createLogger({ level: 'warn', pretty: true }),
        say: (text) => console.log(text),
      })
      if (submission?.state !== 'scored') {
        throw new ProctorError(
          'challenge_test_failed',
          `the baseline did not score: ${submission?.statusDetail ?? 'it did not finish'}`,
        )
      }
    })

  program
    .command('local-run')
    .argument('<repository>', 'your repository folder')
    .requiredOption('--challenge <file>', "the challenge's definition file")
    .requiredOption('--inputs <dir>', 'sample inputs, mounted read-only at /proctor/input')
    .option('--output <dir>', 'where /proctor/output goes', './proctor-output')
    .description('build your repository and run it exactly as proctor will, on sample inputs')
    .action(async function localRunCommand(
      this: Command,
      repository: string,
      flags: { challenge: string; inputs: string; output: string },
    ) {
      const [
        { localRun },
        { createLogger },
        { connectDocker },
        { DockerRuntime },
        { DockerfileBuilder },
        { Repo2DockerBuilder },
      ] = await Promise.all([
        import('../../local/local-run.ts'),
        import('../../app/logger.ts'),
        import('../../runtime/docker-client.ts'),
        import('../../runtime/docker-runtime.ts'),
        import('../../build/dockerfile-builder.ts'),
        import('../../build/repo2docker.ts'),
      ])
      const config = baseConfig(this)
      const log = createLogger({ level: 'warn', pretty: true })
      const docker = connectDocker()
      const result = await localRun({
        repoDir: repository,
        challengeFile: flags.challenge,
        inputsDir: flags.inputs,
        outputDir: flags.output,
        builders: {
          repo2docker: new Repo2DockerBuilder(config.builder.repo2docker, log, { docker }),
          dockerfile: new DockerfileBuilder(docker, log),
        },
        runtime: new DockerRuntime(docker, log),
        log,
        say: (text) => console.log(text),
      })
      console.log(result.run.log.text)
      console.log(
        `\n${result.run.outcome}, exit code ${result.run.exitCode ?? '-'}, ${formatDuration(result.run.wallMs)}; output: ${result.outputs.join(', ') || 'nothing'}`,
      )
      if (result.failure)
        throw new ProctorError(
          'local_run_failed',
          `proctor would fail this submission: ${result.failure.code}: ${result.failure.message}`,
        )
    })

  const token = program.command('token').description('API tokens, written straight to the database')
  token
    .command('create')
    .requiredOption('--name <name>')
    .option('--scope <scope>', 'operator | organizer | platform | participant', 'participant')
    .option('--challenge <id...>', 'for organizer tokens: the challenges they organize')
    .option('--participant <username>', 'for participant tokens: whose submissions they see')
    .option('--json', 'print JSON for scripts')
    .description('issue a token; it is shown once and stored hashed')
    .action(async function create(
      this: Command,
      flags: {
        name: string
        scope: string
        challenge?: string[]
        participant?: string
        json?: boolean
      },
    ) {
      const [{ openStore, migrate }, { createToken }] = await Promise.all([
        import('../../store/database.ts'),
        import('../../api/auth.ts'),
      ])
      const store = openStore(configOf(this).database.url)
      try {
        await migrate(store)
        const created = await createToken(store.db, {
          name: flags.name,
          scope: flags.scope as 'operator' | 'organizer' | 'platform' | 'participant',
          challenges: flags.challenge,
          participant: flags.participant,
        })
        if (flags.json) printJson(created)
        else
          console.log(
            `${created.token}\n(shown once; ${flags.scope} token "${flags.name}", id ${created.id})`,
          )
      } finally {
        await store.close()
      }
    })
}

/** The configuration file when there is one; otherwise the defaults, for an organizer's laptop. */
function baseConfig(cmd: Command): ProctorConfig {
  const file = rootOf(cmd).opts<{ config: string }>().config
  return existsSync(file) ? configOf(cmd) : parseConfig({}, { baseDir: process.cwd() })
}
