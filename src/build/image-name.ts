import { createHash } from 'node:crypto'

/**
 * Image names for submissions: `<namespace>/<challenge>/<project path>:<submission>-<commit>`.
 *
 *   imageRepository('proctor', 'mnist-2026', 'ML-Course/Alice.Submission')
 *     → 'proctor/mnist-2026/ml-course/alice.submission'
 *   imageTag('01J9Z3K7', 'a94e3b1f0c2d…') → '01J9Z3K7-a94e3b1f0c2d'
 *
 * Repository names come from names participants choose, so they are sanitized, and two
 * projects may sanitize to the same repository ('Foo.Bar' and 'foo.bar'). That is harmless:
 * the tag carries the submission id, which is unique, so two submissions never share a
 * reference.
 */

/** Docker's grammar for one path component of a repository name (distribution/reference). */
export const REPOSITORY_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
/** Docker's grammar for a tag. */
export const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/

/** Keeps each component DNS-label sized; some registries and tools choke on longer ones. */
const MAX_COMPONENT_LENGTH = 63
/**
 * Docker refuses names over 255 characters including the registry host; 200 leaves room for
 * a host such as `registry.internal.example.org:5000/`.
 */
const MAX_REPOSITORY_LENGTH = 200
const MAX_TAG_ID_LENGTH = 100
const HASH_LENGTH = 8

export function imageRepository(
  namespace: string,
  challengeId: string,
  projectPath: string,
): string {
  const head = [...splitPath(namespace), sanitizeComponent(challengeId) || 'x']
  const project = splitPath(projectPath)
  const full = [...head, ...(project.length > 0 ? project : ['project'])].join('/')
  if (full.length <= MAX_REPOSITORY_LENGTH) return full

  // Deeply nested or long project paths collapse into one component that keeps a readable
  // prefix and a hash of the whole path, so different long paths stay apart.
  const prefix = head.join('/')
  const budget = Math.min(MAX_COMPONENT_LENGTH, MAX_REPOSITORY_LENGTH - prefix.length - 1)
  return `${prefix}/${withHash(project.join('-'), projectPath, budget)}`
}

export function imageTag(submissionId: string | number, commitSha: string): string {
  const original = String(submissionId)
  if (!/^[0-9a-fA-F]{7,64}$/.test(commitSha)) {
    throw new TypeError(`imageTag: ${JSON.stringify(commitSha)} is not a hex commit id`)
  }
  let id = original.replace(/[^A-Za-z0-9_.-]+/g, '-')
  if (!/^[A-Za-z0-9_]/.test(id)) id = `s${id}`
  // A lossy rewrite could make two ids equal ('a/b' and 'a:b'): a hash of the original keeps
  // them apart.
  const lossy = id !== original
  if (lossy || id.length > MAX_TAG_ID_LENGTH) {
    id = withHash(id, original, MAX_TAG_ID_LENGTH)
  }
  return `${id}-${commitSha.slice(0, 12).toLowerCase()}`
}

/** Sanitized components of a slash-separated path; `..`, `.` and empty ones are dropped. */
function splitPath(value: string): string[] {
  return value
    .split('/')
    .map(sanitizeComponent)
    .filter((component) => component !== '')
}

function sanitizeComponent(raw: string): string {
  const lowered = raw
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
  // Between alphanumerics Docker allows '.', '_', '__' or a run of '-'; anything else ('..',
  // '._', '___') becomes one '-'.
  const separated = lowered.replace(/[._-]+/g, (run) =>
    run === '.' || run === '_' || run === '__' || /^-+$/.test(run) ? run : '-',
  )
  const component = trimSeparators(separated)
  return component.length > MAX_COMPONENT_LENGTH
    ? withHash(component, raw, MAX_COMPONENT_LENGTH)
    : component
}

/** `<prefix>-<hash of original>` within `maxLength`, still a valid component and tag. */
function withHash(readable: string, original: string, maxLength: number): string {
  const hash = createHash('sha256').update(original).digest('hex').slice(0, HASH_LENGTH)
  const prefix = trimSeparators(readable.slice(0, Math.max(0, maxLength - HASH_LENGTH - 1)))
  return prefix === '' ? hash : `${prefix}-${hash}`
}

function trimSeparators(value: string): string {
  return value.replace(/^[._-]+/, '').replace(/[._-]+$/, '')
}
