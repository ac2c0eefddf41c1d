import { ProctorError } from '../domain/errors.ts'

/**
 * A streaming tar reader for what `docker save` writes: ustar headers with PAX extended
 * headers (long names, xattrs, precise times) and the GNU long-name records some tools still
 * emit. Bodies are streamed, never buffered whole, so a layer of gigabytes costs a few
 * blocks of memory; a layer tar inside the outer tar is read by nesting a reader on the
 * entry's body.
 *
 *   for await (const { entry, body } of readTar(stream)) {
 *     if (entry.type === 'file') for await (const chunk of body) hash.update(chunk)
 *   }
 *
 * A body left unread is skipped when the loop asks for the next entry.
 */
export type TarEntryType =
  | 'file'
  | 'hardlink'
  | 'symlink'
  | 'char'
  | 'block'
  | 'directory'
  | 'fifo'
  | 'other'

export interface TarEntry {
  /** Without a leading `./` or `/` and without a trailing `/`; `''` is the root. */
  readonly path: string
  readonly type: TarEntryType
  /** Permission bits, setuid/setgid/sticky included; no file-type bits. */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  /** Seconds since the epoch, fractional when a PAX header gives them. */
  readonly mtime: number
  /** A link's target (symlinks as written; hardlinks as an archive path). */
  readonly linkname: string
  readonly devmajor: number
  readonly devminor: number
  /** Extended attributes (`SCHILY.xattr.*` PAX records), e.g. `security.capability`. */
  readonly xattrs: Readonly<Record<string, string>>
}

export interface TarItem {
  readonly entry: TarEntry
  /** The entry's content, `entry.size` bytes; read it before asking for the next item. */
  readonly body: AsyncIterable<Buffer>
}

const BLOCK = 512
const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
}

export class TarFormatError extends ProctorError {
  constructor(message: string) {
    super('tar_invalid', message)
  }
}

export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarItem> {
  const reader = new ByteReader(source)
  let pax: Record<string, string> = {}
  let globalPax: Record<string, string> = {}
  let longName: string | null = null
  let longLink: string | null = null

  for (;;) {
    const block = await reader.readBlock()
    if (block === null || isZero(block)) return
    const header = parseHeader(block)

    // Metadata records describe the next real entry.
    if (header.typeflag === 'x' || header.typeflag === 'g') {
      const records = parsePax(await reader.readAll(header.size))
      await reader.skip(padding(header.size))
      if (header.typeflag === 'x') pax = { ...pax, ...records }
      else globalPax = { ...globalPax, ...records }
      continue
    }
    if (header.typeflag === 'L' || header.typeflag === 'K') {
      const text = cString(await reader.readAll(header.size))
      await reader.skip(padding(header.size))
      if (header.typeflag === 'L') longName = text
      else longLink = text
      continue
    }

    const meta = { ...globalPax, ...pax }
    const size = meta.size === undefined ? header.size : Number(meta.size)
    const xattrs: Record<string, string> = {}
    for (const [key, value] of Object.entries(meta)) {
      if (key.startsWith('SCHILY.xattr.')) xattrs[key.slice('SCHILY.xattr.'.length)] = value
    }
    const entry: TarEntry = {
      path: normalizePath(meta.path ?? longName ?? header.name),
      type: TYPES[header.typeflag] ?? 'other',
      mode: header.mode & 0o7777,
      uid: meta.uid === undefined ? header.uid : Number(meta.uid),
      gid: meta.gid === undefined ? header.gid : Number(meta.gid),
      size,
      mtime: meta.mtime === undefined ? header.mtime : Number(meta.mtime),
      linkname: meta.linkpath ?? longLink ?? header.linkname,
      devmajor: header.devmajor,
      devminor: header.devminor,
      xattrs,
    }
    pax = {}
    longName = null
    longLink = null

    const body = reader.take(size)
    yield { entry, body }
    await body.drain()
    await reader.skip(padding(size))
  }
}

interface RawHeader {
  name: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  typeflag: string
  linkname: string
  devmajor: number
  devminor: number
}

function parseHeader(block: Buffer): RawHeader {
  const stored = readNumber(block, 148, 8)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0)
  if (stored !== sum) {
    throw new TarFormatError(
      `tar header checksum ${stored} does not match ${sum}: not a tar, or a corrupt one`,
    )
  }
  const magic = block.toString('latin1', 257, 263)
  const name = cString(block.subarray(0, 100))
  const prefix = magic.startsWith('ustar') ? cString(block.subarray(345, 500)) : ''
  return {
    name: prefix === '' ? name : `${prefix}/${name}`,
    mode: readNumber(block, 100, 8),
    uid: readNumber(block, 108, 8),
    gid: readNumber(block, 116, 8),
    size: readNumber(block, 124, 12),
    mtime: readNumber(block, 136, 12),
    typeflag: String.fromCharCode(block[156] ?? 0),
    linkname: cString(block.subarray(157, 257)),
    devmajor: readNumber(block, 329, 8),
    devminor: readNumber(block, 337, 8),
  }
}

/** Octal text, or GNU base-256 when the first byte's high bit is set (large sizes, ids). */
function readNumber(block: Buffer, offset: number, length: number): number {
  const first = block[offset] ?? 0
  if (first & 0x80) {
    let value = first & 0x7f
    for (let i = 1; i < length; i++) value = value * 256 + (block[offset + i] ?? 0)
    return value
  }
  const text = block
    .toString('latin1', offset, offset + length)
    .replace(/\0.*$/s, '')
    .trim()
  return text === '' ? 0 : parseInt(text, 8)
}

/** `"<length> <key>=<value>\n"` records; the length counts the whole record in bytes. */
function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {}
  let offset = 0
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset)
    if (space < 0) break
    const length = Number(data.toString('latin1', offset, space))
    if (!Number.isInteger(length) || length <= 0) {
      throw new TarFormatError(`bad PAX record length at byte ${offset}`)
    }
    const record = data.toString('utf8', space + 1, offset + length - 1)
    const equals = record.indexOf('=')
    if (equals > 0) records[record.slice(0, equals)] = record.slice(equals + 1)
    offset += length
  }
  return records
}

function normalizePath(raw: string): string {
  return raw
    .replace(/^(\.\/|\/)+/, '')
    .replace(/\/+$/, '')
    .replace(/^\.$/, '')
}

function cString(bytes: Buffer): string {
  const end = bytes.indexOf(0)
  return bytes.toString('utf8', 0, end < 0 ? bytes.length : end)
}

function isZero(block: Buffer): boolean {
  for (const byte of block) if (byte !== 0) return false
  return true
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

/** Exact reads over an async byte source, keeping what was read ahead. */
class ByteReader {
  readonly #iterator: AsyncIterator<Uint8Array>
  #buffer: Buffer = Buffer.alloc(0)
  #done = false

  constructor(source: AsyncIterable<Uint8Array>) {
    this.#iterator = source[Symbol.asyncIterator]()
  }

  /** The next 512 bytes, or null at the end of the stream. */
  async readBlock(): Promise<Buffer | null> {
    await this.#fill(BLOCK)
    if (this.#buffer.length === 0) return null
    if (this.#buffer.length < BLOCK) throw new TarFormatError('the tar ends inside a header')
    return this.#consume(BLOCK)
  }

  async readAll(size: number): Promise<Buffer> {
    const parts: Buffer[] = []
    for await (const chunk of this.take(size)) parts.push(chunk)
    return Buffer.concat(parts)
  }

  async skip(size: number): Promise<void> {
    await this.take(size).drain()
  }

  /** A body of exactly `size` bytes, streamed from the source. */
  take(size: number): BodyStream {
    return new BodyStream(this, size)
  }

  /** Up to `max` bytes already read or read next; empty only at the end of the stream. */
  async next(max: number): Promise<Buffer> {
    if (this.#buffer.length === 0) await this.#fill(1)
    return this.#consume(Math.min(max, this.#buffer.length))
  }

  #consume(length: number): Buffer {
    const out = this.#buffer.subarray(0, length)
    this.#buffer = this.#buffer.subarray(length)
    return out
  }

  async #fill(wanted: number): Promise<void> {
    while (this.#buffer.length < wanted && !this.#done) {
      const result = await this.#iterator.next()
      if (result.done) this.#done = true
      else {
        const chunk = Buffer.from(result.value.buffer, result.value.byteOffset, result.value.length)
        this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
      }
    }
  }
}

class BodyStream implements AsyncIterable<Buffer> {
  readonly #reader: ByteReader
  #remaining: number

  constructor(reader: ByteReader, size: number) {
    this.#reader = reader
    this.#remaining = size
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    while (this.#remaining > 0) {
      const chunk = await this.#reader.next(this.#remaining)
      if (chunk.length === 0)
        throw new TarFormatError(`the tar ends ${this.#remaining} bytes early`)
      this.#remaining -= chunk.length
      yield chunk
    }
  }

  async drain(): Promise<void> {
    for await (const chunk of this) void chunk
  }
}
