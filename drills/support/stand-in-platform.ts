import { createHmac, timingSafeEqual } from 'node:crypto'
import http from 'node:http'

/** One request the stand-in platform received. */
export interface Delivery {
  readonly key: string
  readonly submissionId: number
  readonly state: string
  readonly at: number
}

export interface StandInPlatform {
  readonly url: string
  /** Every signed delivery, in arrival order (a repeated key appears each time). */
  readonly deliveries: Delivery[]
  readonly badSignatures: number
  close(): Promise<void>
}

/**
 * A webhook receiver standing in for the platform: checks the HMAC signature, records each
 * delivery (key, submission, state) and answers 200. Duplicates are kept, so a drill can
 * tell "received twice" from "received once".
 */
export function startStandInPlatform(secret: string): Promise<StandInPlatform> {
  const deliveries: Delivery[] = []
  let badSignatures = 0
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      if (!verify(secret, body, String(request.headers['x-proctor-signature']))) {
        badSignatures++
        response.writeHead(401).end()
        return
      }
      try {
        const json = JSON.parse(body) as {
          submission?: { id?: number }
          change?: { state?: string }
        }
        deliveries.push({
          key: String(request.headers['x-proctor-delivery']),
          submissionId: Number(json.submission?.id),
          state: String(json.change?.state ?? ''),
          at: Date.now(),
        })
      } catch {
        // Not JSON: recorded nowhere, answered 200 all the same.
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}')
    })
  })
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      resolve({
        url: `http://127.0.0.1:${port}`,
        deliveries,
        get badSignatures() {
          return badSignatures
        },
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          }),
      })
    })
  })
}

function verify(secret: string, body: string, header: string): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`)
  const given = Buffer.from(header)
  return expected.length === given.length && timingSafeEqual(expected, given)
}
