import { createHash } from 'node:crypto'

import { describe, expect, it } from 'vitest'

import { buildTar, chunked } from '../../test/archive/support/tar-builder.ts'
import { readTar, TarFormatError, type TarEntry } from './tar-reader.ts'

async function readAll(data: Buffer, chunk?: number) {
  const out: { entry: TarEntry; content: string }[] = []
  for await (const { entry, body } of readTar(chunked(data, chunk))) {
    const parts: Buffer[] = []
    for await (const part of body) parts.push(part)
    out.push({ entry, content: Buffer.concat(parts).toString('utf8') })
  }
  return out
}

describe('readTar', () => {
  it('reads ustar entries with their type, mode, owner, times and content, in any chunking', async () => {
    const tar = buildTar([
      { path: './etc/', type: 'directory', mode: 0o755 },
      {
        path: './etc/os-release',
        content: 'NAME=test\n',
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_123,
      },
      { path: 'usr/bin/tool', content: 'x'.repeat(1500), mode: 0o4755, uid: 1000, gid: 100 },
      { path: 'usr/bin/alias', type: 'symlink', linkname: 'tool' },
      { path: 'usr/bin/copy', type: 'hardlink', linkname: 'usr/bin/tool' },
      { path: 'dev/null', type: 'char', devmajor: 1, devminor: 3 },
    ])

    for (const size of [1, 7, 512, 100_000]) {
      const entries = await readAll(tar, size)
      expect(entries.map((e) => [e.entry.path, e.entry.type])).toEqual([
        ['etc', 'directory'],
        ['etc/os-release', 'file'],
        ['usr/bin/tool', 'file'],
        ['usr/bin/alias', 'symlink'],
        ['usr/bin/copy', 'hardlink'],
        ['dev/null', 'char'],
      ])
      expect(entries[1]?.entry).toMatchObject({
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 1_700_000_123,
        size: 10,
      })
      expect(entries[1]?.content).toBe('NAME=test\n')
      expect(entries[2]?.entry).toMatchObject({ mode: 0o4755, uid: 1000, gid: 100 })
      expect(entries[2]?.content).toBe('x'.repeat(1500))
      expect(entries[3]?.entry.linkname).toBe('tool')
      expect(entries[5]?.entry).toMatchObject({ devmajor: 1, devminor: 3 })
    }
  })

  it('takes long names and extended attributes from PAX records, and long names from GNU records', async () => {
    const long = `deep/${'d'.repeat(120)}/file.txt`
    const tar = buildTar([
      { path: long, content: 'pax' },
      { path: 'bin/ping', content: 'p', xattrs: { 'security.capability': 'cap_net_raw+ep' } },
      { path: `gnu/${'g'.repeat(150)}`, content: 'gnu', format: 'gnu' },
      { path: 'precise', content: '', format: 'pax', mtime: 1_700_000_000.25 },
    ])

    const entries = await readAll(tar)

    expect(entries.map((e) => e.entry.path)).toEqual([
      long,
      'bin/ping',
      `gnu/${'g'.repeat(150)}`,
      'precise',
    ])
    expect(entries[0]?.content).toBe('pax')
    expect(entries[1]?.entry.xattrs).toEqual({ 'security.capability': 'cap_net_raw+ep' })
    expect(entries[2]?.content).toBe('gnu')
    expect(entries[3]?.entry.mtime).toBe(1_700_000_000.25)
  })

  it('skips bodies the caller does not read', async () => {
    const tar = buildTar([
      { path: 'a', content: 'A'.repeat(2000) },
      { path: 'b', content: 'B' },
    ])
    const seen: string[] = []
    for await (const { entry } of readTar(chunked(tar))) seen.push(entry.path)
    expect(seen).toEqual(['a', 'b'])
  })

  it('reads a tar nested in another one through the outer entry’s body', async () => {
    const inner = buildTar([{ path: 'inside.txt', content: 'nested' }])
    const outer = buildTar([{ path: 'layer.tar', content: inner }])
    const found: string[] = []
    for await (const { body } of readTar(chunked(outer))) {
      for await (const { entry, body: innerBody } of readTar(body)) {
        const hash = createHash('sha256')
        for await (const part of innerBody) hash.update(part)
        found.push(`${entry.path}:${hash.digest('hex').slice(0, 8)}`)
      }
    }
    expect(found).toEqual([
      `inside.txt:${createHash('sha256').update('nested').digest('hex').slice(0, 8)}`,
    ])
  })

  it('refuses a corrupt header and a truncated body with a TarFormatError', async () => {
    const tar = buildTar([{ path: 'a', content: 'hello' }])
    const corrupt = Buffer.from(tar)
    corrupt[0] = 0x41 + ((corrupt[0] ?? 0) % 20)
    await expect(readAll(corrupt)).rejects.toBeInstanceOf(TarFormatError)
    await expect(readAll(tar.subarray(0, 515))).rejects.toThrow(/ends 2 bytes early|ends/)
  })
})
