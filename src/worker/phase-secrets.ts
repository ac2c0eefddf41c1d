import { readFileSync } from 'node:fs'
import { chmod, chown, mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'

import type { ChallengeDefinition, PhaseDefinition } from '../config/challenge.ts'
import { InfrastructureError } from '../domain/errors.ts'

/**
 * A challenge's secrets, resolved on the worker host: from an environment variable or a file
 * there. Values never enter the store; a missing one is the operator's to fix.
 */
export function resolveSecrets(
  definition: ChallengeDefinition,
  baseDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Map<string, string> {
  const values = new Map<string, string>()
  for (const [name, source] of Object.entries(definition.secrets)) {
    if ('env' in source) {
      const value = env[source.env]
      if (value === undefined) {
        throw new InfrastructureError(
          `challenge ${definition.id}: secret ${name} reads $${source.env}, which is not set on this worker`,
        )
      }
      values.set(name, value)
    } else {
      const file = path.resolve(baseDir, source.file)
      try {
        values.set(name, readFileSync(file, 'utf8').replace(/\r?\n$/, ''))
      } catch (err) {
        throw new InfrastructureError(
          `challenge ${definition.id}: secret ${name} file ${file} cannot be read on this worker`,
          { cause: err },
        )
      }
    }
  }
  return values
}

/**
 * Writes the secrets one organizer phase asked for as read-only files, one per name, in a
 * folder mounted at /proctor/secrets. Participant phases never get one (the schema refuses it).
 */
export async function writePhaseSecrets(
  phase: PhaseDefinition,
  secrets: Map<string, string>,
  dir: string,
): Promise<string | null> {
  if (phase.secrets.length === 0) return null
  await mkdir(dir, { recursive: true, mode: 0o700 })
  for (const name of phase.secrets) {
    const value = secrets.get(name)
    if (value === undefined)
      throw new InfrastructureError(
        `phase ${phase.name} asks for secret ${name}, which the challenge does not define`,
      )
    const file = path.join(dir, name)
    await writeFile(file, value, { mode: 0o400 })
    await chown(file, 1000, 1000)
  }
  await chown(dir, 1000, 1000)
  await chmod(dir, 0o500)
  return dir
}
