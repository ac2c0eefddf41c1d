/**
 * Docker's multiplexed stream (attach and logs of a container created with `Tty: false`):
 * frames of an 8-byte header `[type, 0, 0, 0, size as uint32 big-endian]` then `size` bytes.
 * Type 1 is stdout, 2 is stderr, 0 is stdin (written to stdout). Headers and payloads may be
 * split anywhere between network chunks.
 *
 * Like docker-modem's demuxStream, a header that cannot be one (a TTY stream, or a daemon
 * that sent something else) switches to passing the bytes through as stdout.
 */

export type OutputStream = 'stdout' | 'stderr'

const HEADER_SIZE = 8

export class FrameDemuxer {
  readonly #onPayload: (stream: OutputStream, payload: Buffer) => void
  readonly #header = Buffer.alloc(HEADER_SIZE)
  #headerFill = 0
  #stream: OutputStream = 'stdout'
  #remaining = 0
  #raw = false

  constructor(onPayload: (stream: OutputStream, payload: Buffer) => void) {
    this.#onPayload = onPayload
  }

  /** Payload slices share memory with `chunk`: a receiver that keeps one must copy it. */
  push(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length) {
      if (this.#raw) {
        this.#onPayload('stdout', chunk.subarray(at))
        return
      }

      if (this.#remaining > 0) {
        const end = Math.min(chunk.length, at + this.#remaining)
        this.#onPayload(this.#stream, chunk.subarray(at, end))
        this.#remaining -= end - at
        at = end
        continue
      }

      const take = Math.min(HEADER_SIZE - this.#headerFill, chunk.length - at)
      chunk.copy(this.#header, this.#headerFill, at, at + take)
      this.#headerFill += take
      at += take
      if (this.#headerFill < HEADER_SIZE) return

      this.#headerFill = 0
      const type = this.#header[0] ?? 0xff
      if (type > 2 || this.#header[1] !== 0 || this.#header[2] !== 0 || this.#header[3] !== 0) {
        this.#raw = true
        this.#onPayload('stdout', Buffer.from(this.#header))
        continue
      }
      this.#stream = type === 2 ? 'stderr' : 'stdout'
      this.#remaining = this.#header.readUInt32BE(4)
    }
  }
}
