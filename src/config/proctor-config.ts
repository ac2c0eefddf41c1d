import { readFileSync } from 'node:fs'
import path from 'node:path'

import YAML from 'yaml'
import { z } from 'zod'

import { ProctorError } from '../domain/errors.ts'
import { forgeFeedbackSchema } from '../feedback/feedback-config.ts'
import { alertsConfigSchema } from '../metrics/alerts-config.ts'
import { platformConfigSchema } from '../platform/platform-config.ts'

/**
 * proctor.yaml: one file for the service. Every key can be overridden from the environment
 * with `PROCTOR_` and the key path in upper case, `__` between levels:
 *
 *   PROCTOR_SERVER__PORT=8081
 *   PROCTOR_DATABASE__URL=postgres://proctor@127.0.0.1/proctor
 *
 * A string value `${NAME}` is replaced by the environment variable NAME, so secrets stay out
 * of the file:
 *
 *   forges:
 *     - id: gitlab
 *       hookSecrets: ['${GITLAB_HOOK_SECRET}']
 */
const forgeSchema = z.object({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/, 'a forge id is lower-case letters, digits and dashes'),
  kind: z.enum(['gitlab', 'github', 'gitea']),
  /** The forge's web address, for links in feedback. */
  baseUrl: z.string().url(),
  /**
   * How to clone a project: `{path}` is replaced by the project's path with namespace.
   * Clone URLs are never taken from a hook's payload.
   */
  cloneUrl: z.string().includes('{path}'),
  /** Any of these authenticates a delivery (system hook and project hooks may differ). */
  hookSecrets: z.array(z.string().min(1)).min(1),
  /** Token for the forge's API (feedback, private clones). Never reaches a build. */
  apiToken: z.string().optional(),
  apiUrl: z.string().url().optional(),
  /** What participants see on their repository (src/feedback/feedback-config.ts). */
  feedback: forgeFeedbackSchema.prefault({}),
})

const tokenSchema = z.object({
  name: z.string(),
  token: z.string().min(16, 'an API token must be at least 16 characters'),
  scope: z.enum(['operator', 'organizer', 'platform', 'participant']).default('operator'),
})

export const proctorConfigSchema = z.object({
  server: z
    .object({
      host: z.string().default('127.0.0.1'),
      port: z.coerce.number().int().min(0).max(65535).default(8080),
      publicUrl: z.string().url().optional(),
      /** Largest hook body accepted (GitLab caps its own at 25 MB). */
      bodyLimitBytes: z.coerce
        .number()
        .int()
        .positive()
        .default(1024 * 1024),
    })
    .prefault({}),
  database: z.object({ url: z.string().default('sqlite:.proctor/proctor.db') }).prefault({}),
  challengesDir: z.string().default('examples/challenges'),
  participantsFile: z.string().optional(),
  forges: z.array(forgeSchema).default([]),
  registry: z
    .object({
      address: z.string().default('127.0.0.1:5000'),
      namespace: z.string().default('proctor'),
      username: z.string().optional(),
      password: z.string().optional(),
    })
    .prefault({}),
  builder: z
    .object({
      repo2docker: z.string().default('.venv/bin/repo2docker'),
      workDir: z.string().default('.proctor/work'),
    })
    .prefault({}),
  /** Where participants see results (src/platform/platform-config.ts). */
  platform: platformConfigSchema.prefault({}),
  api: z.object({ tokens: z.array(tokenSchema).default([]) }).prefault({}),
  worker: z
    .object({
      /** Jobs run at once by this process. 0 runs no worker (an API-only process). */
      slots: z.coerce.number().int().min(0).default(1),
      /** Queues (challenge ids) served; `*` serves every queue. */
      queues: z.array(z.string()).default(['*']),
      capabilities: z.array(z.string()).default([]),
      /** Shares per queue when several have work, e.g. `{ iris: 3, digits: 1 }` (default 1). */
      queueWeights: z.record(z.string(), z.number().positive()).optional(),
      leaseSeconds: z.coerce.number().int().positive().default(60),
      maxAttempts: z.coerce.number().int().positive().default(3),
    })
    .prefault({}),
  docker: z.object({ socketPath: z.string().optional() }).prefault({}),
  log: z
    .object({ level: z.string().default('info'), pretty: z.boolean().default(false) })
    .prefault({}),
  /** Conditions an operator must hear about (src/metrics/alerts-config.ts). */
  alerts: alertsConfigSchema.prefault({}),
})

export type ProctorConfig = z.infer<typeof proctorConfigSchema>
export type ForgeConfig = z.infer<typeof forgeSchema>

export interface LoadConfigOptions {
  /** Environment to read overrides from (tests pass their own). */
  env?: NodeJS.ProcessEnv
  /** Resolve relative paths against this folder (default: the config file's folder). */
  baseDir?: string
}

export function loadConfigFile(file: string, options: LoadConfigOptions = {}): ProctorConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ProctorError('config_missing', `cannot read ${file}: ${String(err)}`, { cause: err })
  }
  const doc = YAML.parseDocument(text)
  if (doc.errors.length > 0) {
    throw new ProctorError('config_invalid', `${file}: ${doc.errors[0]?.message ?? 'not YAML'}`)
  }
  const baseDir = options.baseDir ?? path.dirname(path.resolve(file))
  return parseConfig(doc.toJS() ?? {}, { ...options, baseDir }, file)
}

export function parseConfig(
  raw: unknown,
  options: LoadConfigOptions = {},
  source = 'configuration',
): ProctorConfig {
  const env = options.env ?? process.env
  const merged = applyEnvOverrides(interpolate(raw, env), env)
  const parsed = proctorConfigSchema.safeParse(merged)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue?.path.join('.') || '(root)'
    throw new ProctorError('config_invalid', `${source}: ${where}: ${issue?.message ?? 'invalid'}`)
  }
  return resolvePaths(parsed.data, options.baseDir ?? process.cwd())
}

function resolvePaths(config: ProctorConfig, baseDir: string): ProctorConfig {
  const abs = (p: string) => (path.isAbsolute(p) ? p : path.resolve(baseDir, p))
  const dbUrl = config.database.url
  const sqlitePath = dbUrl.replace(/^sqlite:/, '')
  const isSqliteFile = !/^postgres(ql)?:\/\//.test(dbUrl) && sqlitePath !== ':memory:'
  return {
    ...config,
    database: { url: isSqliteFile ? `sqlite:${abs(sqlitePath)}` : dbUrl },
    challengesDir: abs(config.challengesDir),
    participantsFile: config.participantsFile ? abs(config.participantsFile) : undefined,
    builder: { repo2docker: abs(config.builder.repo2docker), workDir: abs(config.builder.workDir) },
  }
}

function interpolate(value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Z0-9_]+)\}/g, (_, name: string) => {
      const found = env[name]
      if (found === undefined) {
        throw new ProctorError('config_invalid', `environment variable ${name} is not set`)
      }
      return found
    })
  }
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env))
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, env)]))
  }
  return value
}

/** PROCTOR_A__B=1 sets a.b; keys are matched case-insensitively against camelCase names. */
function applyEnvOverrides(raw: unknown, env: NodeJS.ProcessEnv): unknown {
  const root: Record<string, unknown> = raw && typeof raw === 'object' ? { ...raw } : {}
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('PROCTOR_') || value === undefined) continue
    const keys = name.slice('PROCTOR_'.length).split('__')
    // Only keys the schema knows: PROCTOR_HOME and the scripts' other variables are not
    // configuration, and must not become it if a key of that name is added one day.
    if (!TOP_LEVEL_KEYS.has(snakeToCamel(keys[0] ?? ''))) continue
    let node = root
    for (const [i, key] of keys.entries()) {
      const found = Object.keys(node).find(
        (k) => k.toLowerCase() === key.toLowerCase().replace(/_/g, ''),
      )
      const camel = found ?? snakeToCamel(key)
      if (i === keys.length - 1) {
        node[camel] = parseEnvValue(value)
      } else {
        const child = node[camel]
        node[camel] = child && typeof child === 'object' ? { ...child } : {}
        node = node[camel] as Record<string, unknown>
      }
    }
  }
  return root
}

const TOP_LEVEL_KEYS = new Set(Object.keys(proctorConfigSchema.shape))

function snakeToCamel(key: string): string {
  return key.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
}

function parseEnvValue(value: string): unknown {
  if (value.startsWith('[') || value.startsWith('{')) {
    try {
      return JSON.parse(value) as unknown
    } catch {
      return value
    }
  }
  if (value === 'true' || value === 'false') return value === 'true'
  return value
}
