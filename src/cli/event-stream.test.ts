import { describe, expect, it } from 'vitest'

import { readSse } from './event-stream.ts'

function body(...chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder()
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk))
      controller.close()
    },
  })
}

async function read(stream: ReadableStream<Uint8Array>) {
  const out: unknown[] = []
  for await (const message of readSse(stream)) out.push(message)
  return out
}

describe('readSse', () => {
  it('splits messages, whatever the chunks, and skips comments', async () => {
    const messages = await read(
      body(
        'retry: 2000\n: hello\n\nid: 5\nev',
        'ent: state\ndata: {"a"',
        ':1}\n\n: keep-alive\n\n',
      ),
    )
    expect(messages).toEqual([{ retry: 2000 }, { event: 'state', id: '5', data: '{"a":1}' }])
  })

  it('joins data lines and accepts CRLF line ends', async () => {
    const messages = await read(body('data: one\r\ndata: two\r\n\r\nevent: ready\ndata:{}\n\n'))
    expect(messages).toEqual([
      { event: 'message', id: null, data: 'one\ntwo' },
      { event: 'ready', id: null, data: '{}' },
    ])
  })

  it('decodes UTF-8 split across chunks', async () => {
    const bytes = new TextEncoder().encode('data: café\n\n')
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 9))
        controller.enqueue(bytes.slice(9))
        controller.close()
      },
    })
    expect(await read(stream)).toEqual([{ event: 'message', id: null, data: 'café' }])
  })
})
