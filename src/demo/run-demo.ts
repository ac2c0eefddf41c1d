import { randomBytes } from 'node:crypto'
import { rmSync } from 'node:fs'
import path from 'node:path'

import { createApp } from '../app/create-app.ts'
import { createLogger } from '../app/logger.ts'
import { loadConfigFile } from '../config/proctor-config.ts'
import { submitAndFollow } from './drive.ts'
import { pushParticipantTag } from './participant-repo.ts'

const ROOT = path.resolve(import.meta.dirname, '../..')

/**
 * The demo: one proctor process (API + worker) on a fresh embedded database, a participant
 * pushing a tag of the iris baseline to the loopback git server, the GitLab System Hook
 * POSTed to proctor, and the submission followed to its end. Prints the timeline.
 */
export async function runDemo(
  options: { config?: string; keep?: boolean; verbose?: boolean } = {},
): Promise<number> {
  process.env.PROCTOR_DEMO_HOOK_SECRET ??= randomBytes(16).toString('hex')
  process.env.PROCTOR_DEMO_API_TOKEN ??= randomBytes(24).toString('hex')
  const configFile = options.config ?? path.join(ROOT, 'examples/proctor.yaml')
  const config = loadConfigFile(configFile)
  const dbFile = config.database.url.replace(/^sqlite:/, '')
  if (!options.keep && dbFile.startsWith('/'))
    rmSync(path.dirname(dbFile), { recursive: true, force: true })

  const log = createLogger({ level: options.verbose ? 'info' : 'warn', pretty: true })
  const say = (text: string) => process.stdout.write(`${text}\n`)
  const app = await createApp({ ...config, server: { ...config.server, port: 0 } }, { log })
  const address = await app.start()
  try {
    say(`proctor is up at ${address} (API and one worker slot, SQLite at ${dbFile})`)

    const forge = config.forges[0]
    if (!forge) throw new Error(`${configFile} configures no forge`)
    const gitRoot = process.env.PROCTOR_GIT_ROOT ?? path.join(ROOT, '.proctor/git')
    const gitUrl = forge.cloneUrl.replace('/{path}.git', '')
    const projectPath = 'alice/iris'
    const tag = `submission-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}`

    const pushed = await pushParticipantTag({
      gitRoot,
      gitUrl,
      projectPath,
      sourceDir: path.join(ROOT, 'examples/participants/iris'),
      tag,
    })
    say(
      `alice pushed tag ${tag} (commit ${pushed.commit.slice(0, 12)}) to ${gitUrl}/${projectPath}.git`,
    )

    const submission = await submitAndFollow({
      address: address ?? '',
      apiToken: process.env.PROCTOR_DEMO_API_TOKEN ?? '',
      forge: {
        id: forge.id,
        baseUrl: forge.baseUrl,
        hookSecret: process.env.PROCTOR_DEMO_HOOK_SECRET ?? '',
      },
      projectId: 1001,
      projectPath,
      pushed,
      user: { id: 42, username: 'alice', name: 'Alice' },
      say,
    })
    return submission?.state === 'scored' ? 0 : 1
  } finally {
    await app.close()
  }
}
