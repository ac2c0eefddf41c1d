import type { LogEvent, TimelineEvent } from '../events/stream-event.ts'
import { formatDuration } from './format.ts'

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
const BAR_WIDTH = 24
/** `score: 42% scored 20 of 50 images`: how the worker words organizer progress. */
const PROGRESS = /^(\S+): (\d{1,3})%\s*(.*)$/

export interface FollowDisplayOptions {
  /** A terminal: redraw a status line in place. Otherwise plain lines only. */
  readonly live: boolean
  readonly color: boolean
}

/**
 * What `proctor submissions follow` prints: one line per timeline entry, with the time since
 * the previous one, and on a terminal a status line redrawn in place: a spinner, the state,
 * the stage, how long it has lasted, and a progress bar when the grader reports progress.
 */
export class FollowDisplay {
  readonly #out: NodeJS.WritableStream
  readonly #options: FollowDisplayOptions
  #previousAt: number | null = null
  #state = 'unknown'
  #stage: string | null = null
  #since = Date.now()
  #progress: { fraction: number; text: string } | null = null
  #frame = 0
  #timer: NodeJS.Timeout | undefined
  #statusShown = false

  constructor(out: NodeJS.WritableStream, options: FollowDisplayOptions) {
    this.#out = out
    this.#options = options
  }

  start(): void {
    if (!this.#options.live) return
    this.#timer = setInterval(() => this.#drawStatus(), 100)
    this.#timer.unref()
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#clearStatus()
  }

  timeline(e: TimelineEvent): void {
    const at = Date.parse(e.at)
    const gap = this.#previousAt === null ? '' : `+${formatDuration(at - this.#previousAt)}`
    this.#previousAt = at
    let what: string
    if (e.kind === 'state') {
      this.#state = e.state ?? this.#state
      this.#stage = null
      this.#since = at
      this.#progress = null
      what = this.#paint(this.#state, (e.state ?? '').padEnd(10))
    } else {
      if (e.stage) this.#stage = e.stage
      const progress = e.kind === 'progress' ? PROGRESS.exec(e.message) : null
      if (progress) {
        this.#progress = {
          fraction: Math.min(100, Number(progress[2])) / 100,
          text: `${progress[1]}: ${progress[3] ?? ''}`,
        }
      }
      what = `· ${e.stage ?? e.kind}`.padEnd(10)
    }
    const time = new Date(at).toTimeString().slice(0, 8)
    this.#line(`  ${time} ${gap.padStart(10)}  ${what} ${e.message}`)
  }

  log(e: LogEvent, showText: boolean): void {
    const size = `${(e.bytesTotal / 1024).toFixed(1)} KiB${e.bytesElided ? `, ${(e.bytesElided / 1024).toFixed(1)} KiB elided` : ''}`
    this.#line(`  ${' '.repeat(19)}  · log      ${e.stage} log stored (${size})`)
    if (showText) this.#line(e.text.replace(/^/gm, '    │ '))
  }

  note(text: string): void {
    this.#line(text)
  }

  #line(text: string): void {
    this.#clearStatus()
    this.#out.write(`${text}\n`)
    this.#drawStatus()
  }

  #drawStatus(): void {
    if (!this.#options.live || this.#timer === undefined) return
    this.#frame = (this.#frame + 1) % SPINNER.length
    const lasted = formatDuration(Date.now() - this.#since)
    let text = `${SPINNER[this.#frame]} ${this.#paint(this.#state, this.#state)}${this.#stage ? ` · ${this.#stage}` : ''} · ${lasted}`
    if (this.#progress) {
      const filled = Math.round(this.#progress.fraction * BAR_WIDTH)
      const percent = `${Math.round(this.#progress.fraction * 100)}%`.padStart(4)
      text += `  [${'█'.repeat(filled)}${'░'.repeat(BAR_WIDTH - filled)}] ${percent} ${this.#progress.text}`
    }
    // A pseudo-terminal may report 0 columns: assume a common width then.
    const reported = (this.#out as NodeJS.WriteStream).columns ?? 0
    const columns = reported > 20 ? reported : 100
    this.#out.write(`\r\x1b[2K${truncate(text, columns - 1)}`)
    this.#statusShown = true
  }

  #clearStatus(): void {
    if (!this.#statusShown) return
    this.#out.write('\r\x1b[2K')
    this.#statusShown = false
  }

  #paint(state: string, text: string): string {
    if (!this.#options.color) return text
    const code =
      state === 'scored'
        ? 32
        : state === 'failed' || state === 'rejected'
          ? 31
          : state === 'cancelled'
            ? 33
            : 36
    return `\x1b[${code}m${text}\x1b[0m`
  }
}

/** Cuts visible text to a width, ignoring colour codes when counting. */
function truncate(text: string, width: number): string {
  let visible = 0
  let out = ''
  for (let i = 0; i < text.length; i++) {
    // A colour code (ESC [ … m) takes no room on the screen.
    if (text.charCodeAt(i) === 0x1b) {
      const end = text.indexOf('m', i)
      out += text.slice(i, end + 1)
      i = end
      continue
    }
    if (visible >= width) break
    out += text[i]
    visible++
  }
  return out
}
