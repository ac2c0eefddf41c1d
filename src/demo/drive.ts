import { randomBytes } from 'node:crypto'

import { formatSubmission, type SubmissionView } from '../cli/format.ts'
import { isTerminal, type SubmissionState } from '../domain/states.ts'
import { gitlabTagPushBody, type PushedTag } from './participant-repo.ts'

export interface DriveOptions {
  /** proctor's API address, e.g. http://127.0.0.1:8080 */
  address: string
  apiToken: string
  forge: { id: string; baseUrl: string; hookSecret: string }
  projectId: number
  projectPath: string
  pushed: PushedTag
  user: { id: number; username: string; name: string }
  say: (text: string) => void
  timeoutMs?: number
}

/**
 * Plays the forge: POSTs a GitLab System Hook for a pushed tag, then follows the submission
 * through the API until it ends, printing each change and finally its timeline. Returns the
 * submission as the API shows it, or null when it never ended.
 */
export async function submitAndFollow(options: DriveOptions): Promise<SubmissionView | null> {
  const { address, say } = options
  const body = gitlabTagPushBody({
    baseUrl: options.forge.baseUrl,
    projectId: options.projectId,
    projectPath: options.projectPath,
    pushed: options.pushed,
    user: options.user,
  })
  const hook = await fetch(`${address}/hooks/${options.forge.id}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-gitlab-event': 'System Hook',
      'x-gitlab-token': options.forge.hookSecret,
      'idempotency-key': randomBytes(16).toString('hex'),
    },
    body: JSON.stringify(body),
  })
  const answer = (await hook.json()) as { eventId?: number; status?: string; message?: string }
  say(`GitLab System Hook POSTed: HTTP ${hook.status} ${JSON.stringify(answer)}`)
  if (!answer.eventId) return null

  const api = async <T>(p: string): Promise<T> => {
    const response = await fetch(`${address}${p}`, {
      headers: { authorization: `Bearer ${options.apiToken}` },
    })
    return (await response.json()) as T
  }

  let submissionId: number | null = null
  let last = ''
  const deadline = Date.now() + (options.timeoutMs ?? 15 * 60_000)
  while (Date.now() < deadline) {
    submissionId ??= (await api<{ submissionId: number | null }>(`/api/events/${answer.eventId}`))
      .submissionId
    if (submissionId !== null) {
      const s = await api<SubmissionView>(`/api/submissions/${submissionId}`)
      const line = `${s.state.padEnd(10)}  ${s.statusDetail}`
      if (line !== last) say(`  ${new Date().toISOString()}  ${line}`)
      last = line
      if (isTerminal(s.state as SubmissionState)) {
        say('')
        say(formatSubmission(s))
        return s
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  say(
    `the submission did not end within ${Math.round((options.timeoutMs ?? 15 * 60_000) / 60_000)} minutes; see proctor's log`,
  )
  return null
}
