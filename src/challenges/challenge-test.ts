import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import type { Logger } from 'pino'

import { createApp } from '../app/create-app.ts'
import type { SubmissionView } from '../cli/format.ts'
import { loadChallengeFile } from '../config/challenge.ts'
import { parseConfig, type ProctorConfig } from '../config/proctor-config.ts'
import { ProctorError } from '../domain/errors.ts'
import { submitAndFollow } from '../demo/drive.ts'
import { pushParticipantTag } from '../demo/participant-repo.ts'

const ORGANIZER = { id: 1, username: 'organizer', name: 'Organizer' }

/**
 * `proctor challenge test <file>`: submits the challenge's own baseline through the real
 * path (hook, intake, quota, build, archive, every phase) on a throwaway database and git
 * repository, and returns the submission, so an organizer sees the score before opening
 * the challenge. Uses the registry, builder and Docker Engine of `base` configuration.
 */
export async function testChallenge(
  file: string,
  options: { base: ProctorConfig; log: Logger; say: (text: string) => void },
): Promise<SubmissionView | null> {
  const challenge = loadChallengeFile(file)
  const { id, baseline } = challenge.definition
  if (!baseline) {
    throw new ProctorError(
      'no_baseline',
      `${file}: set "baseline" to the folder of a baseline repository to test the challenge with`,
    )
  }
  const baselineDir = path.resolve(challenge.dir, baseline)
  const manifest = JSON.parse(readFileSync(path.join(baselineDir, 'crowdai.json'), 'utf8')) as {
    challenge_id?: unknown
  }
  if (manifest.challenge_id !== id) {
    throw new ProctorError(
      'baseline_mismatch',
      `${baselineDir}/crowdai.json names challenge ${String(manifest.challenge_id)}, not ${id}`,
    )
  }

  const dir = mkdtempSync(path.join(os.tmpdir(), 'proctor-challenge-test-'))
  try {
    // Only this challenge is loaded; its file is linked, so its paths resolve as usual.
    const challengesDir = path.join(dir, 'challenges')
    const participantsFile = path.join(dir, 'participants.yaml')
    const gitRoot = path.join(dir, 'git')
    const hookSecret = randomBytes(16).toString('hex')
    const apiToken = randomBytes(24).toString('hex')
    mkdirSync(challengesDir)
    symlinkSync(path.resolve(file), path.join(challengesDir, path.basename(file)))
    writeFileSync(
      participantsFile,
      `participants:\n  - { username: ${ORGANIZER.username}, identities: [{ forge: local, userId: '${ORGANIZER.id}' }] }\n`,
    )

    const config = parseConfig(
      {
        ...options.base,
        server: { host: '127.0.0.1', port: 0 },
        database: { url: `sqlite:${path.join(dir, 'proctor.db')}` },
        challengesDir,
        participantsFile,
        forges: [
          {
            id: 'local',
            kind: 'gitlab',
            baseUrl: 'https://forge.invalid',
            cloneUrl: `file://${gitRoot}/{path}.git`,
            hookSecrets: [hookSecret],
          },
        ],
        api: { tokens: [{ name: 'challenge-test', token: apiToken, scope: 'operator' }] },
        builder: { ...options.base.builder, workDir: path.join(dir, 'work') },
        worker: { ...options.base.worker, slots: 1, queues: ['*'] },
      },
      { env: {} },
    )
    const app = await createApp(config, { log: options.log })
    const address = (await app.start()) ?? ''
    try {
      const projectPath = `${ORGANIZER.username}/${id}`
      const pushed = await pushParticipantTag({
        gitRoot,
        gitUrl: `file://${gitRoot}`,
        projectPath,
        sourceDir: baselineDir,
        tag: 'challenge-test',
      })
      options.say(
        `baseline ${baselineDir} pushed as ${projectPath} tag challenge-test (commit ${pushed.commit.slice(0, 12)})`,
      )
      return await submitAndFollow({
        address,
        apiToken,
        forge: { id: 'local', baseUrl: 'https://forge.invalid', hookSecret },
        projectId: 1,
        projectPath,
        pushed,
        user: ORGANIZER,
        say: options.say,
      })
    } finally {
      await app.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
