import http from 'node:http'

export interface SseMessage {
  readonly event: string
  readonly id: string | null
  readonly data: string
}

/**
 * A server-sent events client on plain node:http, written for the tests so the server is
 * not checked with its own parser: it keeps the raw text (keep-alive comments included) and
 * the messages, and lets a test wait for either.
 */
export class SseReader {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  raw = ''
  readonly messages: SseMessage[] = []
  readonly #request: http.ClientRequest
  #ended = false

  private constructor(request: http.ClientRequest, response: http.IncomingMessage) {
    this.#request = request
    this.status = response.statusCode ?? 0
    this.headers = response.headers
    let pending = ''
    response.setEncoding('utf8')
    response.on('data', (chunk: string) => {
      this.raw += chunk
      pending += chunk
      let end: number
      while ((end = pending.indexOf('\n\n')) >= 0) {
        const block = pending.slice(0, end)
        pending = pending.slice(end + 2)
        const lines = block.split('\n').filter((l) => !l.startsWith(':'))
        const field = (name: string) =>
          lines.filter((l) => l.startsWith(`${name}: `)).map((l) => l.slice(name.length + 2))
        const data = field('data')
        if (data.length === 0) continue
        this.messages.push({
          event: field('event')[0] ?? 'message',
          id: field('id')[0] ?? null,
          data: data.join('\n'),
        })
      }
    })
    response.on('end', () => (this.#ended = true))
    response.on('error', () => (this.#ended = true))
  }

  static open(url: string, headers: Record<string, string>): Promise<SseReader> {
    return new Promise((resolve, reject) => {
      const request = http.get(url, { headers }, (response) =>
        resolve(new SseReader(request, response)),
      )
      request.on('error', reject)
    })
  }

  get ended(): boolean {
    return this.#ended
  }

  /** Timeline and log messages (not `ready`), parsed. */
  get events(): { event: string; id: string | null; data: Record<string, unknown> }[] {
    return this.messages
      .filter((m) => m.event !== 'ready')
      .map((m) => ({
        event: m.event,
        id: m.id,
        data: JSON.parse(m.data) as Record<string, unknown>,
      }))
  }

  /** Resolves once `count` messages matching `where` have arrived. */
  async waitFor(
    where: (m: SseMessage) => boolean,
    count = 1,
    timeoutMs = 5_000,
  ): Promise<SseMessage[]> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.messages.filter(where)
      if (found.length >= count) return found
      if (Date.now() > deadline) {
        throw new Error(
          `expected ${count} matching message(s) within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`,
        )
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  async waitForText(text: string, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.raw.includes(text)) {
      if (Date.now() > deadline)
        throw new Error(`expected ${JSON.stringify(text)} in the stream within ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  close(): void {
    this.#request.destroy()
  }
}
