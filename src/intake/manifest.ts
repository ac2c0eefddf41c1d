import { z } from 'zod'

import type { CatFileSession } from './cat-file.ts'
import { describeIssue, describeValue } from './describe-issue.ts'
import { parseJsonText } from './json-text.ts'
import type { Mirror } from './mirror.ts'

/**
 * crowdai.json: what a participant says about a submission, at the repository root of the
 * tagged commit.
 *
 *   { "challenge_id": "flower-classification", "authors": ["alice", "bob"],
 *     "description": "random forest, 200 trees", "debug": false, "model": "rf-200" }
 *
 * - `challenge_id` (required, string): the challenge, matched ignoring case.
 * - `authors` (optional, strings): co-authors, by their participant username (as in the
 *   participant directory), matched ignoring case. Names not in the directory are dropped
 *   with a note on the submission's timeline. Authors are credited, never charged.
 * - `description` (optional, string), `debug` (optional, boolean).
 * - Every other key is kept verbatim on the submission (`manifest_extra_json`).
 *
 * The file must be a regular file (not a symlink or submodule) of at most 64 KiB, UTF-8 (a
 * byte-order mark is accepted), holding one JSON object with no duplicate keys.
 */
export const MANIFEST_FILE = 'crowdai.json'
export const MANIFEST_MAX_BYTES = 64 * 1024

export interface Manifest {
  readonly challengeId: string
  readonly authors: readonly string[]
  readonly description: string | null
  readonly debug: boolean
  readonly extra: Readonly<Record<string, unknown>>
}

export type ManifestResult =
  | { ok: true; manifest: Manifest }
  | { ok: false; code: 'manifest_missing' | 'manifest_invalid'; message: string }

const KNOWN_KEYS = new Set(['challenge_id', 'authors', 'description', 'debug'])

const manifestSchema = z.object({
  challenge_id: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(200, 'is longer than 200 characters'),
  authors: z
    .array(z.string().trim().max(255, 'is longer than 255 characters'))
    .max(100, 'lists more than 100 authors')
    .optional(),
  description: z.string().max(10_000, 'is longer than 10000 characters').optional(),
  debug: z.boolean().optional(),
})

export type CommitInspection =
  | { found: false }
  | { found: true; commit: string; manifest: ManifestResult }

/**
 * Peels `rev` to its commit in the mirror and reads crowdai.json at that commit's root,
 * through the mirror's `git cat-file` process. `found: false` when the mirror lacks the commit (fetch, then
 * ask again). Git trouble throws InfrastructureError (the job is retried).
 */
export async function inspectCommit(
  mirror: Mirror,
  rev: string,
  tag: string,
): Promise<CommitInspection> {
  const inspection = await mirror.read(async (reader): Promise<CommitInspection> => {
    const peeled = await reader.peelCommit(rev)
    if (!peeled) return { found: false }
    const manifest = await readManifestAt(reader, peeled.tree, tag)
    return { found: true, commit: peeled.commit, manifest }
  })
  return inspection ?? { found: false }
}

async function readManifestAt(
  reader: CatFileSession,
  tree: string,
  tag: string,
): Promise<ManifestResult> {
  const entries = await reader.listTree(tree)
  const entry = entries.find((e) => e.name === MANIFEST_FILE)
  if (!entry || entry.type !== 'blob') {
    const nearly = entries.find(
      (e) => e.name.toLowerCase() === MANIFEST_FILE && e.name !== MANIFEST_FILE,
    )
    const hint = nearly ? ` (found ${nearly.name}; the name is case-sensitive)` : ''
    const what =
      entry?.type === 'tree' ? ' (it is a directory)' : entry ? ' (it is a submodule)' : ''
    return {
      ok: false,
      code: 'manifest_missing',
      message: `${MANIFEST_FILE} not found at the repository root of tag ${tag}${what}${hint}`,
    }
  }
  if (entry.mode === '120000') {
    return {
      ok: false,
      code: 'manifest_invalid',
      message: `${MANIFEST_FILE} at tag ${tag} is a symbolic link; it must be a regular file`,
    }
  }
  const size = await reader.blobSize(entry.sha)
  if (size !== null && size > MANIFEST_MAX_BYTES) {
    return {
      ok: false,
      code: 'manifest_invalid',
      message: `${MANIFEST_FILE} at tag ${tag} is ${size} bytes; the limit is ${MANIFEST_MAX_BYTES} (64 KiB)`,
    }
  }
  return parseManifest(await reader.readBlob(entry.sha), tag)
}

/** Checks crowdai.json's bytes: one parse, one object. */
export function parseManifest(bytes: Buffer, tag: string): ManifestResult {
  const where = `${MANIFEST_FILE} at tag ${tag}`
  const invalid = (message: string): ManifestResult => ({
    ok: false,
    code: 'manifest_invalid',
    message: `${where}: ${message}`,
  })
  if (bytes.length > MANIFEST_MAX_BYTES)
    return invalid(`it is larger than ${MANIFEST_MAX_BYTES} bytes (64 KiB)`)
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return invalid('it is saved as UTF-16; save it as UTF-8')
  }

  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch {
    return invalid('it is not UTF-8 text')
  }

  const parsed = parseJsonText(text)
  if (!parsed.ok) return invalid(`line ${parsed.line}, column ${parsed.column}: ${parsed.message}`)
  const value = parsed.value
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return invalid(
      `it must hold a JSON object ({ "challenge_id": … }), not ${describeValue(value)}`,
    )
  }

  const fields = manifestSchema.safeParse(value)
  if (!fields.success) {
    const { message } = describeIssue(fields.error, value)
    return invalid(message)
  }

  // fromEntries, not assignment: a "__proto__" key stays a plain key.
  const extra = Object.fromEntries(Object.entries(value).filter(([key]) => !KNOWN_KEYS.has(key)))
  return {
    ok: true,
    manifest: {
      challengeId: fields.data.challenge_id,
      authors: (fields.data.authors ?? []).filter((a) => a !== ''),
      description: fields.data.description ?? null,
      debug: fields.data.debug ?? false,
      extra,
    },
  }
}
