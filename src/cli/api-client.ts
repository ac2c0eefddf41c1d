import { ProctorError } from '../domain/errors.ts'

export interface ApiClientOptions {
  url: string
  token: string
}

/** The CLI's way to proctor: its HTTP API, with a bearer token. */
export class ApiClient {
  readonly #url: string
  readonly #token: string

  constructor(options: ApiClientOptions) {
    this.#url = options.url.replace(/\/+$/, '')
    this.#token = options.token
  }

  static fromEnv(flags: { apiUrl?: string; token?: string }): ApiClient {
    const url = flags.apiUrl ?? process.env.PROCTOR_API_URL ?? 'http://127.0.0.1:8080'
    const token = flags.token ?? process.env.PROCTOR_API_TOKEN
    if (!token) {
      throw new ProctorError(
        'no_token',
        'set PROCTOR_API_TOKEN (or pass --token) to an API token from proctor.yaml',
      )
    }
    return new ApiClient({ url, token })
  }

  get url(): string {
    return this.#url
  }

  async get<T>(path: string): Promise<T> {
    return this.#json<T>('GET', path)
  }

  async post<T>(path: string, body?: unknown): Promise<T> {
    return this.#json<T>('POST', path, body)
  }

  /** A body as text (CSV exports). */
  async getText(path: string): Promise<string> {
    return (await this.#send('GET', path)).text()
  }

  /**
   * Opens a server-sent events stream; the caller reads `response.body`. Errors as for
   * other calls, before any byte is read.
   */
  async openStream(
    path: string,
    lastEventId: string | null,
    signal?: AbortSignal,
  ): Promise<Response> {
    return this.#send(
      'GET',
      path,
      undefined,
      {
        accept: 'text/event-stream',
        ...(lastEventId === null ? {} : { 'last-event-id': lastEventId }),
      },
      signal,
    )
  }

  async #json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const text = await (await this.#send(method, path, body)).text()
    return (text ? JSON.parse(text) : null) as T
  }

  async #send(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<Response> {
    let response: Response
    try {
      response = await fetch(`${this.#url}${path}`, {
        method,
        signal,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    } catch (err) {
      if (signal?.aborted) throw err
      throw new ProctorError(
        'api_unreachable',
        `cannot reach proctor at ${this.#url}: is \`proctor serve\` running?`,
        { cause: err },
      )
    }
    if (response.ok) return response
    const text = await response.text()
    let message = response.statusText
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? message
    } catch {
      // Not JSON (a proxy's error page): the status text says enough.
    }
    throw new ProctorError(
      `http_${response.status}`,
      `${method} ${path}: ${response.status} ${message}`,
    )
  }
}
