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
      throw new ProctorError('no_token', 'set PROCTOR_API_TOKEN (or pass --token) to an API token from proctor.yaml')
    }
    return new ApiClient({ url, token })
  }

  async get<T>(path: string): Promise<T> {
    return this.#request<T>('GET', path)
  }

  async post<T>(path: string, body?: unknown): Promise<T> {
    return this.#request<T>('POST', path, body)
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response
    try {
      response = await fetch(`${this.#url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    } catch (err) {
      throw new ProctorError('api_unreachable', `cannot reach proctor at ${this.#url}: is \`proctor serve\` running?`, { cause: err })
    }
    const text = await response.text()
    const json = text ? (JSON.parse(text) as unknown) : null
    if (!response.ok) {
      const message = (json as { message?: string } | null)?.message ?? response.statusText
      throw new ProctorError(`http_${response.status}`, `${method} ${path}: ${response.status} ${message}`)
    }
    return json as T
  }
}
