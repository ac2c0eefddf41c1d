import { sendJson, startStandIn, type StandIn } from '../../outbox/support/reporting.ts'

/**
 * The GitLab REST endpoints feedback uses (/work/shared/reference/protocols.md §1.6), under
 * `/api/v4`, with `PRIVATE-TOKEN`. Like GitLab, posting a commit status in the state it is
 * already in is a 400 "Cannot transition status".
 */
export interface GitlabIssue {
  iid: number
  projectId: string
  title: string
  description: string
  labels: string
  edits: number
}

export interface GitlabStandIn {
  readonly standIn: StandIn
  readonly apiUrl: string
  readonly statuses: {
    projectId: string
    sha: string
    state: string
    name: string
    ref: string
    targetUrl: string | null
    description: string
  }[]
  readonly issues: GitlabIssue[]
  /** The next issue create is applied but answered only after this many ms. */
  hangNextCreateMs: number
}

export async function startGitlabStandIn(token: string): Promise<GitlabStandIn> {
  const state = {
    statuses: [] as GitlabStandIn['statuses'],
    issues: [] as GitlabIssue[],
    hangNextCreateMs: 0,
  }
  const current = new Map<string, string>()

  const standIn = await startStandIn(async (request, response) => {
    if (request.headers['private-token'] !== token)
      return sendJson(response, 401, { message: '401 Unauthorized' })
    const body = (request.json ?? {}) as Record<string, string | undefined>
    const parts = request.path
      .replace(/^\/api\/v4/, '')
      .split('/')
      .map(decodeURIComponent)
    // ['', 'projects', ':id', 'statuses', ':sha'] | ['', 'projects', ':id', 'issues'(, ':iid')]
    const projectId = parts[2] ?? ''

    if (request.method === 'POST' && parts[3] === 'statuses' && parts[4]) {
      const sha = parts[4]
      const name = body.name ?? body.context ?? 'default'
      const key = `${projectId}/${sha}/${name}`
      if (!['pending', 'running', 'success', 'failed', 'canceled'].includes(body.state ?? '')) {
        return sendJson(response, 400, { message: 'state does not have a valid value' })
      }
      if (current.get(key) === body.state) {
        return sendJson(response, 400, {
          message: `Cannot transition status via :${body.state} from :${body.state}`,
        })
      }
      current.set(key, body.state ?? '')
      state.statuses.push({
        projectId,
        sha,
        state: body.state ?? '',
        name,
        ref: body.ref ?? '',
        targetUrl: body.target_url ?? null,
        description: body.description ?? '',
      })
      return sendJson(response, 201, { id: state.statuses.length, sha, status: body.state, name })
    }

    if (request.method === 'POST' && parts[3] === 'issues' && parts.length === 4) {
      if (!body.title) return sendJson(response, 400, { message: 'title is missing' })
      const issue: GitlabIssue = {
        iid: state.issues.filter((i) => i.projectId === projectId).length + 1,
        projectId,
        title: body.title,
        description: body.description ?? '',
        labels: body.labels ?? '',
        edits: 0,
      }
      state.issues.push(issue)
      const hang = state.hangNextCreateMs
      state.hangNextCreateMs = 0
      if (hang > 0) await new Promise((resolve) => setTimeout(resolve, hang))
      if (!response.destroyed)
        sendJson(response, 201, { id: 9000 + issue.iid, iid: issue.iid, title: issue.title })
      return
    }

    if (request.method === 'GET' && parts[3] === 'issues' && parts.length === 4) {
      const search = request.query.get('search') ?? ''
      const found = state.issues.filter(
        (i) => i.projectId === projectId && i.title.includes(search),
      )
      return sendJson(
        response,
        200,
        found.map((i) => ({ iid: i.iid, title: i.title })),
      )
    }

    if (request.method === 'PUT' && parts[3] === 'issues' && parts[4]) {
      const issue = state.issues.find(
        (i) => i.projectId === projectId && i.iid === Number(parts[4]),
      )
      if (!issue) return sendJson(response, 404, { message: '404 Issue Not Found' })
      if (body.description !== undefined) issue.description = body.description
      issue.edits++
      return sendJson(response, 200, { iid: issue.iid, title: issue.title })
    }

    return sendJson(response, 404, { message: '404 Not Found' })
  })
  return Object.assign(state, { standIn, apiUrl: `${standIn.url}/api/v4` })
}
