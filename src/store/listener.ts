import pg from 'pg'

/**
 * A PostgreSQL LISTEN on one dedicated connection (a pooled one would be handed to other
 * queries and lose its subscriptions). The connection is re-opened after it drops (the
 * database restarted, a network blip), with a growing delay; notifications sent while it was
 * down are lost, so callers keep polling as a fallback and treat a notification as a hint.
 */
export interface Listener {
  /** True while the LISTEN connection is open. */
  readonly connected: boolean
  close(): Promise<void>
}

export interface ListenOptions {
  /** Called once the subscription is (re)established: poll now, a wake-up may be lost. */
  onConnect?: () => void
  /** Called when the connection fails or drops; the listener keeps retrying. */
  onError?: (err: Error) => void
  /** Longest wait between reconnection attempts (default 5 s). */
  maxRetryMs?: number
}

const FIRST_RETRY_MS = 100

export async function listenPostgres(
  connectionString: string,
  channel: string,
  onMessage: (payload: string) => void,
  options: ListenOptions = {},
): Promise<Listener> {
  const listener = new PostgresListener(connectionString, channel, onMessage, options)
  await listener.connect()
  return listener
}

class PostgresListener implements Listener {
  readonly #connectionString: string
  readonly #channel: string
  readonly #onMessage: (payload: string) => void
  readonly #options: ListenOptions
  #client: pg.Client | null = null
  #closed = false
  #retryMs = FIRST_RETRY_MS
  #retryTimer: NodeJS.Timeout | undefined

  constructor(
    connectionString: string,
    channel: string,
    onMessage: (payload: string) => void,
    options: ListenOptions,
  ) {
    this.#connectionString = connectionString
    this.#channel = channel
    this.#onMessage = onMessage
    this.#options = options
  }

  get connected(): boolean {
    return this.#client !== null
  }

  /** Connects once; on failure schedules a retry (the first call still resolves). */
  async connect(): Promise<void> {
    if (this.#closed) return
    const client = new pg.Client({
      connectionString: this.#connectionString,
      connectionTimeoutMillis: 5_000,
      keepAlive: true,
    })
    client.on('notification', (message) => {
      if (message.channel === this.#channel) this.#onMessage(message.payload ?? '')
    })
    client.on('error', (err) => this.#dropped(client, err))
    client.on('end', () => this.#dropped(client, new Error('LISTEN connection ended')))
    try {
      await client.connect()
      await client.query(`listen ${pg.escapeIdentifier(this.#channel)}`)
    } catch (err) {
      this.#dropped(client, err instanceof Error ? err : new Error(String(err)))
      return
    }
    if (this.#closed) {
      await client.end().catch(() => undefined)
      return
    }
    this.#client = client
    this.#retryMs = FIRST_RETRY_MS
    this.#options.onConnect?.()
  }

  #dropped(client: pg.Client, err: Error): void {
    client.removeAllListeners('end')
    client.removeAllListeners('notification')
    // Keep an error listener: a late socket error must not crash the process.
    client.on('error', () => undefined)
    client.end().catch(() => undefined)
    if (this.#client === client) this.#client = null
    if (this.#closed || this.#retryTimer) return
    this.#options.onError?.(err)
    const delay = this.#retryMs
    this.#retryMs = Math.min(this.#retryMs * 2, this.#options.maxRetryMs ?? 5_000)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      void this.connect()
    }, delay)
    this.#retryTimer.unref()
  }

  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retryTimer)
    const client = this.#client
    this.#client = null
    if (!client) return
    client.removeAllListeners('end')
    client.on('error', () => undefined)
    await client.end().catch(() => undefined)
  }
}
