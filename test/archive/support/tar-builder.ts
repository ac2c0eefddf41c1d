import { createHash } from 'node:crypto'

/**
 * Writes tar archives for tests of the reader: ustar headers, a PAX record when a name is
 * long or attributes need one (or when asked), GNU long names when asked, and `docker save`
 * archives made of such layers.
 */
export interface TarSpec {
  path: string
  type?: 'file' | 'directory' | 'symlink' | 'hardlink' | 'char'
  content?: string | Buffer
  mode?: number
  uid?: number
  gid?: number
  mtime?: number
  linkname?: string
  xattrs?: Record<string, string>
  format?: 'ustar' | 'pax' | 'gnu'
  devmajor?: number
  devminor?: number
}

const TYPEFLAG = { file: '0', hardlink: '1', symlink: '2', char: '3', directory: '5' } as const

export function buildTar(entries: readonly TarSpec[]): Buffer {
  const blocks: Buffer[] = []
  for (const spec of entries) {
    const type = spec.type ?? 'file'
    const body = type === 'file' ? Buffer.from(spec.content ?? '') : Buffer.alloc(0)
    const records: Record<string, string> = {}
    for (const [key, value] of Object.entries(spec.xattrs ?? {}))
      records[`SCHILY.xattr.${key}`] = value
    let name = spec.path
    if (spec.format === 'gnu' && name.length > 100) {
      blocks.push(
        ...withBody(
          header({ name: '././@LongLink', typeflag: 'L', size: name.length + 1 }),
          Buffer.from(`${name}\0`),
        ),
      )
      name = name.slice(0, 100)
    } else if (spec.format === 'pax' || name.length > 100 || Object.keys(records).length > 0) {
      if (spec.format === 'pax' || name.length > 100) records.path = name
      if (spec.mtime !== undefined && spec.format === 'pax') records.mtime = String(spec.mtime)
      const pax = Buffer.concat(Object.entries(records).map(([k, v]) => paxRecord(k, v)))
      blocks.push(...withBody(header({ name: 'PaxHeader', typeflag: 'x', size: pax.length }), pax))
      name = name.slice(0, 100)
    }
    blocks.push(
      ...withBody(
        header({
          name,
          typeflag: TYPEFLAG[type],
          size: body.length,
          mode: spec.mode ?? (type === 'directory' ? 0o755 : 0o644),
          uid: spec.uid ?? 0,
          gid: spec.gid ?? 0,
          mtime: Math.floor(spec.mtime ?? 1_700_000_000),
          linkname: spec.linkname ?? '',
          devmajor: spec.devmajor ?? 0,
          devminor: spec.devminor ?? 0,
        }),
        body,
      ),
    )
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

/** A legacy `docker save` archive: one folder per layer, the config, then manifest.json. */
export function buildImageArchive(layers: readonly (readonly TarSpec[])[]): {
  archive: Buffer
  diffIds: string[]
} {
  const tars = layers.map((entries) => buildTar(entries))
  const diffIds = tars.map((t) => `sha256:${createHash('sha256').update(t).digest('hex')}`)
  const config = Buffer.from(
    JSON.stringify({
      created: '2026-01-01T00:00:00Z',
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  )
  const configName = `${createHash('sha256').update(config).digest('hex')}.json`
  const dirs = tars.map((_, i) => `${String(i).padStart(64, 'a')}`)
  const entries: TarSpec[] = []
  tars.forEach((tar, i) => {
    entries.push(
      { path: `${dirs[i]}/`, type: 'directory' },
      { path: `${dirs[i]}/VERSION`, content: '1.0' },
      { path: `${dirs[i]}/layer.tar`, content: tar },
    )
  })
  entries.push({ path: configName, content: config })
  entries.push({
    path: 'manifest.json',
    content: JSON.stringify([
      { Config: configName, RepoTags: null, Layers: dirs.map((d) => `${d}/layer.tar`) },
    ]),
  })
  return { archive: buildTar(entries), diffIds }
}

/** Yields a buffer in small, uneven chunks, as a socket would. */
export async function* chunked(data: Buffer, size = 333): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size)
    yield await Promise.resolve(data.subarray(i, i + size))
}

interface HeaderFields {
  name: string
  typeflag: string
  size: number
  mode?: number
  uid?: number
  gid?: number
  mtime?: number
  linkname?: string
  devmajor?: number
  devminor?: number
}

function header(h: HeaderFields): Buffer {
  const block = Buffer.alloc(512)
  block.write(h.name, 0, 100, 'utf8')
  octal(block, 100, 8, h.mode ?? 0o644)
  octal(block, 108, 8, h.uid ?? 0)
  octal(block, 116, 8, h.gid ?? 0)
  octal(block, 124, 12, h.size)
  octal(block, 136, 12, h.mtime ?? 0)
  block.write(h.typeflag, 156, 1, 'latin1')
  block.write(h.linkname ?? '', 157, 100, 'utf8')
  block.write('ustar\0', 257, 6, 'latin1')
  block.write('00', 263, 2, 'latin1')
  octal(block, 329, 8, h.devmajor ?? 0)
  octal(block, 337, 8, h.devminor ?? 0)
  block.fill(0x20, 148, 156)
  let sum = 0
  for (const byte of block) sum += byte
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1')
  return block
}

function octal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1')
}

function withBody(head: Buffer, body: Buffer): Buffer[] {
  const pad = (512 - (body.length % 512)) % 512
  return [head, body, Buffer.alloc(pad)]
}

function paxRecord(key: string, value: string): Buffer {
  const text = ` ${key}=${value}\n`
  const textLength = Buffer.byteLength(text)
  let length = textLength + 1
  while (String(length).length + textLength !== length) length = String(length).length + textLength
  return Buffer.from(`${length}${text}`)
}
