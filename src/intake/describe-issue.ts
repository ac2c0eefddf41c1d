import type { z } from 'zod'

/**
 * Turns a schema's first complaint into plain words naming the field, for a 400 answer or a
 * participant's rejection message: `project.id is required`, `after must be a string, not a
 * number`. Schemas set their own message for format rules (a sha, a path); that one is used.
 */
export function describeIssue(
  error: z.ZodError,
  input: unknown,
  root = '',
): { field: string; message: string } {
  const issue = error.issues[0]
  const segments = (issue?.path ?? []).map(String)
  const field = [root, ...segments].filter((s) => s !== '').join('.') || '(body)'
  if (!issue) return { field, message: `${field} is invalid` }

  if (issue.code === 'invalid_type') {
    const value = valueAt(input, issue.path ?? [])
    if (value === undefined) return { field, message: `${field} is required` }
    return {
      field,
      message: `${field} must be ${article(issue.expected)}, not ${describeValue(value)}`,
    }
  }
  const custom = issue.message.startsWith('Invalid') ? 'is invalid' : issue.message
  return { field, message: `${field} ${custom}` }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<PropertyKey, unknown>)[key]
  }
  return node
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  return article(typeof value)
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}
