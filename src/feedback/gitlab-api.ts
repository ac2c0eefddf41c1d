import { expectSuccess, responseMessage, sendHttp, type HttpResponse } from '../outbox/http.ts'

export type CommitStatusState = 'pending' | 'running' | 'success' | 'failed' | 'canceled'

export interface GitlabApiOptions {
  /** The REST base, e.g. `https://gitlab.example.org/api/v4`. */
  readonly apiUrl: string
  readonly token: string
  readonly timeoutMs: number
}

/**
 * The few GitLab REST calls feedback makes (/work/shared/reference/protocols.md §1.6), with
 * `PRIVATE-TOKEN`. A project is named by its numeric id, URL-encoded.
 *
 * - `POST /projects/:id/statuses/:sha` (state, name, ref, target_url, description)
 * - `POST /projects/:id/issues` (title, description, labels) → `{ iid, … }`
 * - `PUT /projects/:id/issues/:iid` (description)
 * - `GET /projects/:id/issues?search=…&in=title`: only to find an issue whose create got no
 *   answer, so a retry does not open a second one.
 */
export class GitlabApi {
  readonly #options: GitlabApiOptions

  constructor(options: GitlabApiOptions) {
    this.#options = options
  }

  /**
   * Sets the commit's status. GitLab answers 400 "Cannot transition status…" when the
   * status already has this state (a repeated delivery): that counts as done.
   */
  async setCommitStatus(
    projectId: string,
    sha: string,
    status: {
      state: CommitStatusState
      name: string
      ref: string
      description: string
      targetUrl: string | null
    },
    signal: AbortSignal,
  ): Promise<'set' | 'already'> {
    const response = await this.#send(
      'POST',
      `/projects/${encodeURIComponent(projectId)}/statuses/${encodeURIComponent(sha)}`,
      {
        state: status.state,
        name: status.name,
        ref: status.ref,
        description: status.description,
        ...(status.targetUrl ? { target_url: status.targetUrl } : {}),
      },
      signal,
    )
    if (response.status === 400 && /cannot transition status/i.test(responseMessage(response)))
      return 'already'
    expectSuccess(
      response,
      `setting the commit status of ${sha.slice(0, 12)} in project ${projectId}`,
    )
    return 'set'
  }

  async createIssue(
    projectId: string,
    issue: { title: string; description: string; labels: readonly string[] },
    signal: AbortSignal,
  ): Promise<number> {
    const response = await this.#send(
      'POST',
      `/projects/${encodeURIComponent(projectId)}/issues`,
      {
        title: issue.title,
        description: issue.description,
        ...(issue.labels.length ? { labels: issue.labels.join(',') } : {}),
      },
      signal,
    )
    expectSuccess(response, `opening an issue in project ${projectId}`)
    return issueIid(response, `opening an issue in project ${projectId}`)
  }

  async editIssue(
    projectId: string,
    iid: number,
    description: string,
    signal: AbortSignal,
  ): Promise<void> {
    const response = await this.#send(
      'PUT',
      `/projects/${encodeURIComponent(projectId)}/issues/${iid}`,
      { description },
      signal,
    )
    expectSuccess(response, `editing issue ${iid} in project ${projectId}`)
  }

  /** The iid of the project's issue with exactly this title, if there is one. */
  async findIssueByTitle(
    projectId: string,
    title: string,
    signal: AbortSignal,
  ): Promise<number | null> {
    const query = new URLSearchParams({ search: title, in: 'title', per_page: '100' })
    const response = await this.#send(
      'GET',
      `/projects/${encodeURIComponent(projectId)}/issues?${query.toString()}`,
      undefined,
      signal,
    )
    expectSuccess(response, `searching the issues of project ${projectId}`)
    const issues = Array.isArray(response.json)
      ? (response.json as { iid?: unknown; title?: unknown }[])
      : []
    const match = issues.find((i) => i.title === title && typeof i.iid === 'number')
    return match ? (match.iid as number) : null
  }

  #send(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body: Record<string, unknown> | undefined,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    return sendHttp({
      method,
      url: `${this.#options.apiUrl.replace(/\/+$/, '')}${path}`,
      headers: {
        'private-token': this.#options.token,
        accept: 'application/json',
        ...(body ? { 'content-type': 'application/json' } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
      timeoutMs: this.#options.timeoutMs,
      signal,
    })
  }
}

function issueIid(response: HttpResponse, what: string): number {
  const iid = (response.json as { iid?: unknown } | null)?.iid
  if (typeof iid !== 'number') throw new Error(`${what}: the answer has no issue iid`)
  return iid
}
