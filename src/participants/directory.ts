import { readFileSync } from 'node:fs'

import { sql } from 'kysely'
import YAML from 'yaml'
import { z } from 'zod'

import type { Clock } from '../domain/clock.ts'
import { ProctorError } from '../domain/errors.ts'
import type { Participant } from '../store/schema.ts'
import { inTransaction, type Executor } from '../store/transaction.ts'

/**
 * The participant directory: who may submit, and which forge accounts are theirs. Loaded
 * from `participantsFile` (proctor.yaml) into the `participants` and
 * `participant_identities` tables:
 *
 *   participants:
 *     - username: alice            # proctor's name for her; what crowdai.json "authors" list
 *       displayName: Alice Nguyen
 *       team: flowers              # quota is charged to the team when set
 *       platformId: "4711"         # her id on an external platform, if any
 *       identities:
 *         - { forge: gitlab, userId: 42, username: alice }
 *         - { forge: github, userId: 98765432, username: alice-ng }
 *
 * Loading is an upsert and idempotent. Participants missing from the file are kept (their
 * submissions refer to them) but the file is the truth for identities: an identity not in
 * the file is removed, so deleting a line revokes that account's right to submit.
 */
const identitySchema = z
  .object({
    forge: z.string().min(1),
    userId: z.union([z.number().int().nonnegative(), z.string().min(1).max(64)]).transform(String),
    username: z.string().min(1).max(255).optional(),
  })
  .strict()

const participantSchema = z
  .object({
    username: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, 'must be letters, digits, _ . - (at most 100)'),
    displayName: z.string().max(255).optional(),
    team: z.string().min(1).max(100).optional(),
    platformId: z.union([z.string(), z.number()]).transform(String).optional(),
    identities: z.array(identitySchema).default([]),
  })
  .strict()

const directorySchema = z.object({ participants: z.array(participantSchema).default([]) }).strict()

export type ParticipantEntry = z.output<typeof participantSchema>

export interface DirectoryLoadResult {
  participants: number
  identities: number
  identitiesRemoved: number
}

/** Reads and validates the directory file. Errors name the file and the entry. */
export function readParticipantsFile(
  file: string,
  knownForges?: readonly string[],
): ParticipantEntry[] {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ProctorError(
      'participants_invalid',
      `cannot read the participant directory ${file}: ${String(err)}`,
    )
  }
  const doc = YAML.parseDocument(text)
  if (doc.errors.length > 0) {
    throw new ProctorError(
      'participants_invalid',
      `${file}: ${doc.errors[0]?.message ?? 'not YAML'}`,
    )
  }
  return parseParticipants(doc.toJS() ?? {}, file, knownForges)
}

export function parseParticipants(
  raw: unknown,
  source: string,
  knownForges?: readonly string[],
): ParticipantEntry[] {
  const parsed = directorySchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue?.path.join('.') || '(root)'
    throw new ProctorError(
      'participants_invalid',
      `${source}: ${where}: ${issue?.message ?? 'invalid'}`,
    )
  }

  const usernames = new Map<string, number>()
  const identities = new Map<string, string>()
  for (const [i, p] of parsed.data.participants.entries()) {
    const lower = p.username.toLowerCase()
    const twin = usernames.get(lower)
    if (twin !== undefined) {
      throw new ProctorError(
        'participants_invalid',
        `${source}: participants.${i}.username ${p.username} is also participants.${twin} (usernames are compared ignoring case)`,
      )
    }
    usernames.set(lower, i)
    for (const [j, identity] of p.identities.entries()) {
      if (knownForges && !knownForges.includes(identity.forge)) {
        throw new ProctorError(
          'participants_invalid',
          `${source}: participants.${i}.identities.${j}.forge ${identity.forge} is not a configured forge (${knownForges.join(', ') || 'none configured'})`,
        )
      }
      const key = `${identity.forge}\0${identity.userId}`
      const owner = identities.get(key)
      if (owner !== undefined) {
        throw new ProctorError(
          'participants_invalid',
          `${source}: ${identity.forge} user ${identity.userId} is listed for both ${owner} and ${p.username}`,
        )
      }
      identities.set(key, p.username)
    }
  }
  return parsed.data.participants
}

/** Writes the directory into the store in one transaction. Safe to run at every start. */
export async function loadParticipantDirectory(
  db: Executor,
  entries: readonly ParticipantEntry[],
  clock: Clock,
): Promise<DirectoryLoadResult> {
  return inTransaction(db, async (trx) => {
    const now = clock.now().toISOString()
    let identityCount = 0
    const keep = new Set<string>()

    for (const entry of entries) {
      const row = await trx
        .insertInto('participants')
        .values({
          username: entry.username,
          display_name: entry.displayName ?? null,
          team: entry.team ?? null,
          platform_id: entry.platformId ?? null,
          created_at: now,
        })
        .onConflict((oc) =>
          oc.column('username').doUpdateSet({
            display_name: entry.displayName ?? null,
            team: entry.team ?? null,
            platform_id: entry.platformId ?? null,
          }),
        )
        .returning('id')
        .executeTakeFirstOrThrow()

      for (const identity of entry.identities) {
        await trx
          .insertInto('participant_identities')
          .values({
            participant_id: Number(row.id),
            forge: identity.forge,
            forge_user_id: identity.userId,
            forge_username: identity.username ?? null,
          })
          .onConflict((oc) =>
            oc.columns(['forge', 'forge_user_id']).doUpdateSet({
              participant_id: Number(row.id),
              forge_username: identity.username ?? null,
            }),
          )
          .execute()
        keep.add(`${identity.forge}\0${identity.userId}`)
        identityCount++
      }
    }

    const existing = await trx
      .selectFrom('participant_identities')
      .select(['id', 'forge', 'forge_user_id'])
      .execute()
    const stale = existing
      .filter((r) => !keep.has(`${r.forge}\0${r.forge_user_id}`))
      .map((r) => r.id)
    if (stale.length > 0)
      await trx.deleteFrom('participant_identities').where('id', 'in', stale).execute()

    return {
      participants: entries.length,
      identities: identityCount,
      identitiesRemoved: stale.length,
    }
  })
}

/** Reads `file` and loads it: what startup and `proctor participants load` call. */
export async function loadParticipantsFile(
  db: Executor,
  file: string,
  clock: Clock,
  knownForges?: readonly string[],
): Promise<DirectoryLoadResult> {
  return loadParticipantDirectory(db, readParticipantsFile(file, knownForges), clock)
}

/** The participant a forge account belongs to, if the directory maps it. */
export async function findParticipantByForgeUser(
  db: Executor,
  forge: string,
  forgeUserId: string,
): Promise<Participant | undefined> {
  return db
    .selectFrom('participant_identities as i')
    .innerJoin('participants as p', 'p.id', 'i.participant_id')
    .selectAll('p')
    .where('i.forge', '=', forge)
    .where('i.forge_user_id', '=', forgeUserId)
    .executeTakeFirst()
}

/** Participants by username, ignoring case. Unknown names are simply absent. */
export async function findParticipantsByUsernames(
  db: Executor,
  usernames: readonly string[],
): Promise<Participant[]> {
  const lower = [...new Set(usernames.map((u) => u.toLowerCase()))]
  if (lower.length === 0) return []
  return db
    .selectFrom('participants')
    .selectAll()
    .where(sql<string>`lower(username)`, 'in', lower)
    .execute()
}

/** A participant's account on a forge (for `proctor submit`), if the directory has one. */
export async function findForgeIdentity(
  db: Executor,
  participantId: number,
  forge: string,
): Promise<{ forgeUserId: string; username: string | null } | undefined> {
  const row = await db
    .selectFrom('participant_identities')
    .select(['forge_user_id', 'forge_username'])
    .where('participant_id', '=', participantId)
    .where('forge', '=', forge)
    .orderBy('id', 'asc')
    .executeTakeFirst()
  return row ? { forgeUserId: row.forge_user_id, username: row.forge_username } : undefined
}
