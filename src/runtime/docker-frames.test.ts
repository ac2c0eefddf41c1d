import { describe, expect, it } from 'vitest'

import { FrameDemuxer, type OutputStream } from './docker-frames.ts'

function frame(type: number, payload: string): Buffer {
  const body = Buffer.from(payload)
  const header = Buffer.alloc(8)
  header[0] = type
  header.writeUInt32BE(body.length, 4)
  return Buffer.concat([header, body])
}

function demux(chunks: Buffer[]): Array<[OutputStream, string]> {
  const out: Array<[OutputStream, string]> = []
  const demuxer = new FrameDemuxer((stream, payload) => {
    const last = out.at(-1)
    // Adjacent pieces of one stream are joined: chunking must not change what is read.
    if (last && last[0] === stream) last[1] += payload.toString()
    else out.push([stream, payload.toString()])
  })
  for (const chunk of chunks) demuxer.push(chunk)
  return out
}

describe('FrameDemuxer', () => {
  const stream = Buffer.concat([
    frame(1, 'hello '),
    frame(1, 'world\n'),
    frame(2, 'warning\n'),
    frame(1, ''),
    frame(0, 'from stdin\n'),
  ])
  const expected: Array<[OutputStream, string]> = [
    ['stdout', 'hello world\n'],
    ['stderr', 'warning\n'],
    ['stdout', 'from stdin\n'],
  ]

  it('splits frames into stdout and stderr', () => {
    expect(demux([stream])).toEqual(expected)
  })

  it('reads headers and payloads split at any byte', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      expect(demux([stream.subarray(0, cut), stream.subarray(cut)])).toEqual(expected)
    }
    expect(demux(Array.from(stream, (byte) => Buffer.from([byte])))).toEqual(expected)
  })

  it('passes a stream without frames through as stdout', () => {
    expect(demux([Buffer.from('plain TTY output\n'), Buffer.from('more\n')])).toEqual([
      ['stdout', 'plain TTY output\nmore\n'],
    ])
  })
})
