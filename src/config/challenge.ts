import { createHash } from 'node:crypto'
import { readFileSync, readdirSync, realpathSync, statSync } from 'node:fs'
import path from 'node:path'

import YAML, { isMap, isSeq, type Node } from 'yaml'
import { z } from 'zod'

import { ProctorError } from '../domain/errors.ts'

/**
 * A challenge definition: one YAML file per challenge, written by its organizer. The file's
 * folder holds what it refers to (data, grader source). See docs/challenges.md.
 */
const limitsSchema = z.object({
  timeSeconds: z.number().positive().default(600),
  memoryMb: z.number().int().positive().default(1024),
  cpus: z.number().positive().default(1),
  pids: z.number().int().positive().default(128),
  tmpfsMb: z.number().int().positive().default(64),
  outputMb: z.number().int().positive().default(64),
})

const imageSchema = z.union([
  z.literal('participant'),
  z.object({ build: z.string() }).strict(),
  z
    .object({
      digest: z.string().regex(/@sha256:[0-9a-f]{64}$/, 'a pinned grader is name@sha256:<64 hex>'),
    })
    .strict(),
])

const phaseSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]*$/),
    /** `participant` runs the submission's image; otherwise the organizer's image. */
    image: imageSchema,
    /** Command run in the image; for the participant's image, relative to its working dir. */
    command: z.array(z.string()).optional(),
    limits: limitsSchema.prefault({}),
    /**
     * What a participant sees of this phase's output: `none`, `tail` (the last 4 KiB) or
     * `all`. Organizers always see everything. Default: `tail` for the participant's own
     * phase, `none` for organizer phases (a grader's output may quote the labels).
     */
    participantLogs: z.enum(['none', 'tail', 'all']).optional(),
    /** Secrets (names from `secrets`) mounted read-only under /proctor/secrets. */
    secrets: z.array(z.string()).default([]),
    network: z.enum(['none']).default('none'),
    runtime: z.enum(['runc', 'runsc']).default('runc'),
    gpus: z.number().int().nonnegative().default(0),
  })
  .strict()
  .refine((phase) => phase.image !== 'participant' || phase.secrets.length === 0, {
    message: "a participant phase cannot receive secrets: participants' code would read them",
    path: ['secrets'],
  })

const quotaSchema = z
  .object({
    limit: z.number().int().nonnegative().default(5),
    /** A rolling window (`24h`, `7d`, `90m`), or a calendar `period` in `timeZone`. */
    window: z
      .string()
      .regex(/^\d+[mhd]$/)
      .optional(),
    period: z.enum(['day', 'week']).optional(),
    timeZone: z.string().default('UTC'),
    inFlight: z.number().int().positive().optional(),
    debugLimit: z.number().int().nonnegative().optional(),
  })
  .strict()
  .refine((q) => !(q.window && q.period), { message: 'set either window or period, not both' })

const roundSchema = z
  .object({
    id: z.string(),
    start: z.iso.datetime({ offset: true }),
    end: z.iso.datetime({ offset: true }),
    quota: quotaSchema.optional(),
  })
  .strict()

export const challengeSchema = z
  .object({
    id: z
      .string()
      .regex(
        /^[a-z0-9][a-z0-9._-]*$/,
        'a challenge id is lower-case letters, digits, dot, dash, underscore',
      ),
    title: z.string(),
    description: z.string().optional(),
    tagPattern: z.string().default('*'),
    acceptSubmissions: z.boolean().default(true),
    /**
     * The organizer's own baseline: a repository folder (relative to this file) that
     * `proctor challenge test` submits through the real path before the challenge opens.
     */
    baseline: z.string().optional(),
    rounds: z.array(roundSchema).default([]),
    afterLastRound: z.enum(['refuse', 'post-challenge']).default('refuse'),
    quota: quotaSchema.prefault({}),
    allowDebug: z.boolean().default(false),
    build: z
      .object({
        builder: z.enum(['repo2docker', 'dockerfile']).default('repo2docker'),
        timeSeconds: z.number().positive().default(1800),
        memoryMb: z.number().int().positive().default(4096),
        maxImageMb: z.number().int().positive().default(8192),
      })
      .strict()
      .prefault({}),
    data: z
      .object({
        /** Hidden test inputs, mounted read-only at /proctor/input for the participant. */
        inputs: z.string(),
        /** Hidden labels, mounted read-only at /proctor/labels for the grader only. */
        labels: z.string(),
      })
      .strict(),
    phases: z.array(phaseSchema).min(1),
    scoring: z
      .object({
        direction: z.enum(['maximize', 'minimize']).default('maximize'),
        decimals: z.number().int().min(0).max(12).default(4),
        hidden: z.boolean().default(false),
        leaderboard: z.enum(['best', 'latest', 'selected']).default('best'),
        freezeAt: z.iso.datetime({ offset: true }).optional(),
      })
      .strict()
      .prefault({}),
    /**
     * What the archive keeps once the challenge ends (docs/archive.md): each participant's
     * best N and last M, everything on the final leaderboard and anything pinned; the rest
     * expires after the grace period.
     */
    retention: z
      .object({
        keepUntilEnd: z.boolean().default(true),
        keepBestPerParticipant: z.number().int().min(0).default(3),
        keepLastPerParticipant: z.number().int().min(0).default(2),
        graceDays: z.number().min(0).default(30),
      })
      .strict()
      .prefault({}),
    secrets: z
      .record(
        z.string(),
        z.union([z.object({ env: z.string() }).strict(), z.object({ file: z.string() }).strict()]),
      )
      .default({}),
  })
  .strict()

export type ChallengeDefinition = z.infer<typeof challengeSchema>
export type PhaseDefinition = z.infer<typeof phaseSchema>
export type PhaseLimits = z.infer<typeof limitsSchema>
export type LogPolicy = 'none' | 'tail' | 'all'

/** What a participant may see of a phase's log (organizers see everything). */
export function participantLogPolicy(phase: PhaseDefinition): LogPolicy {
  return phase.participantLogs ?? (phase.image === 'participant' ? 'tail' : 'none')
}

/** A loaded challenge: its definition and where its files are. */
export interface Challenge {
  readonly definition: ChallengeDefinition
  readonly file: string
  readonly dir: string
  readonly inputsDir: string
  readonly labelsDir: string
}

/** Reads and validates one challenge file. Errors name the file, line and field. */
export function loadChallengeFile(file: string): Challenge {
  const text = readFileSync(file, 'utf8')
  const doc = YAML.parseDocument(text, { keepSourceTokens: true })
  if (doc.errors.length > 0) {
    const first = doc.errors[0]
    const line = first?.linePos?.[0].line
    throw new ProctorError(
      'challenge_invalid',
      `${file}${line ? `:${line}` : ''}: ${first?.message ?? 'not YAML'}`,
    )
  }

  const parsed = challengeSchema.safeParse(doc.toJS())
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const fieldPath = issue?.path ?? []
    const line = lineOf(doc.contents, fieldPath, text)
    const field = fieldPath.join('.') || '(root)'
    throw new ProctorError(
      'challenge_invalid',
      `${file}${line ? `:${line}` : ''}: ${field}: ${issue?.message ?? 'invalid'}`,
    )
  }

  // Paths in the file are relative to where it really is, even when it is reached by a link.
  const dir = path.dirname(realpathSync(file))
  const definition = parsed.data
  return {
    definition,
    file: path.resolve(file),
    dir,
    inputsDir: path.resolve(dir, definition.data.inputs),
    labelsDir: path.resolve(dir, definition.data.labels),
  }
}

/** Loads every `*.yaml`/`*.yml` in a folder; ids must be unique. */
export function loadChallengesDir(dir: string): Map<string, Challenge> {
  const challenges = new Map<string, Challenge>()
  for (const name of readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(name)) continue
    const challenge = loadChallengeFile(path.join(dir, name))
    const id = challenge.definition.id
    const existing = challenges.get(id)
    if (existing) {
      throw new ProctorError(
        'challenge_invalid',
        `${challenge.file}: id ${id} is also used by ${existing.file}`,
      )
    }
    challenges.set(id, challenge)
  }
  return challenges
}

/** Where in the YAML a schema error points, as a 1-based line, if the node exists. */
function lineOf(
  root: Node | null,
  fieldPath: readonly PropertyKey[],
  text: string,
): number | undefined {
  let node: unknown = root
  let last: Node | undefined = root ?? undefined
  for (const key of fieldPath) {
    if (isMap(node)) node = node.get(key as string, true)
    else if (isSeq(node)) node = node.get(Number(key), true)
    else break
    if (node && typeof node === 'object' && 'range' in node) last = node as Node
  }
  const offset = last?.range?.[0]
  if (offset === undefined) return undefined
  return text.slice(0, offset).split('\n').length
}

/**
 * A content hash of the challenge's hidden data (inputs and labels): file paths and bytes,
 * in sorted order. Recorded on each submission; a worker whose copy differs refuses the job.
 */
export function hashChallengeData(challenge: Challenge): string {
  const hash = createHash('sha256')
  for (const [label, dir] of [
    ['inputs', challenge.inputsDir],
    ['labels', challenge.labelsDir],
  ] as const) {
    for (const file of listFiles(dir)) {
      hash.update(`${label}/${path.relative(dir, file)}\0`)
      hash.update(readFileSync(file))
      hash.update('\0')
    }
  }
  return `sha256:${hash.digest('hex')}`
}

function listFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name)
    if (statSync(full).isDirectory()) out.push(...listFiles(full))
    else out.push(full)
  }
  return out
}
