import { spawn, type ChildProcessByStdio } from 'node:child_process'
import type { Readable, Writable } from 'node:stream'

import { GIT_ENV } from './git.ts'

export interface TreeEntry {
  mode: string
  type: 'blob' | 'tree' | 'commit'
  sha: string
  name: string
}

/**
 * One `git cat-file --batch-command` process: peel a revision, list a tree, read a blob,
 * all over one pipe, one command at a time (callers serialize; see ReaderPool in
 * mirror.ts). Starting a process is the expensive part of reading crowdai.json (spawning
 * blocks Node's event loop for milliseconds), so one process serves many jobs.
 *
 * A process may not see objects fetched after it started: the pool replaces it after every
 * fetch of its mirror.
 */
export class CatFileSession {
  readonly #child: ChildProcessByStdio<Writable, Readable, Readable>
  #buffer: Buffer = Buffer.alloc(0)
  #waiter: (() => void) | null = null
  #ended = false
  #error: Error | null = null

  constructor(repoDir: string) {
    this.#child = spawn('git', ['-C', repoDir, 'cat-file', '--batch-command'], {
      env: { ...process.env, ...GIT_ENV },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    this.#child.stdout.on('data', (chunk: Buffer) => {
      this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
      this.#wake()
    })
    let stderr = ''
    this.#child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
    })
    this.#child.on('error', (err) => this.#fail(err))
    this.#child.on('close', (code) => {
      this.#ended = true
      if (code !== 0 && code !== null)
        this.#fail(new Error(`git cat-file exited ${code}: ${stderr.trim()}`))
      this.#wake()
    })
    this.#child.stdin.on('error', (err) => this.#fail(err))
    this.#hold(false)
  }

  /**
   * An idle reader must not keep Node running (a CLI would hang until it exits), and a busy
   * one must (nothing else may be holding the event loop open while a job waits on git).
   */
  #hold(busy: boolean): void {
    const handles = [this.#child, this.#child.stdin, this.#child.stdout, this.#child.stderr] as {
      ref?: () => void
      unref?: () => void
    }[]
    for (const handle of handles) {
      if (busy) handle.ref?.()
      else handle.unref?.()
    }
  }

  /** False once the process ended or failed: the pool starts another. */
  get usable(): boolean {
    return !this.#ended && this.#error === null
  }

  /** The commit a revision names (an annotated tag is peeled), or null if absent. */
  async peelCommit(rev: string): Promise<{ commit: string; tree: string } | null> {
    const header = await this.#command(`contents ${rev}^{commit}`)
    if (!header) return null
    const body = await this.#readBody(header.size)
    const tree = /^tree ([0-9a-f]+)$/m.exec(body.toString('utf8'))?.[1]
    if (!tree) throw new Error(`commit ${header.sha} has no tree line`)
    return { commit: header.sha, tree }
  }

  /** The entries of a tree object (one level). */
  async listTree(tree: string): Promise<TreeEntry[]> {
    const header = await this.#command(`contents ${tree}`)
    if (!header) throw new Error(`tree ${tree} is missing`)
    const body = await this.#readBody(header.size)
    return parseTree(body, tree.length === 64 ? 32 : 20)
  }

  /** A blob's size without reading it, or null if absent. */
  async blobSize(sha: string): Promise<number | null> {
    const header = await this.#command(`info ${sha}`)
    return header ? header.size : null
  }

  async readBlob(sha: string): Promise<Buffer> {
    const header = await this.#command(`contents ${sha}`)
    if (!header) throw new Error(`blob ${sha} is missing`)
    return this.#readBody(header.size)
  }

  /** Lets git exit once it has answered (end of input). */
  close(): void {
    if (!this.#ended) this.#child.stdin.end()
  }

  /** Ends a process that stopped answering. */
  kill(reason: Error): void {
    this.#fail(reason)
    this.#child.kill('SIGKILL')
  }

  async #command(line: string): Promise<{ sha: string; type: string; size: number } | null> {
    this.#child.stdin.write(`${line}\n`)
    this.#hold(true)
    const header = (await this.#readLine().finally(() => this.#hold(false))).toString('utf8')
    if (header.endsWith(' missing') || header.endsWith(' ambiguous')) return null
    const [sha = '', type = '', size = ''] = header.split(' ')
    if (!/^\d+$/.test(size))
      throw new Error(`unexpected answer from git cat-file: ${header.slice(0, 200)}`)
    return { sha, type, size: Number(size) }
  }

  async #readBody(size: number): Promise<Buffer> {
    this.#hold(true)
    await this.#until(() => this.#buffer.length >= size + 1).finally(() => this.#hold(false))
    const body = this.#buffer.subarray(0, size)
    this.#buffer = this.#buffer.subarray(size + 1)
    return body
  }

  async #readLine(): Promise<Buffer> {
    let newline = -1
    await this.#until(() => (newline = this.#buffer.indexOf(10)) >= 0)
    const line = this.#buffer.subarray(0, newline)
    this.#buffer = this.#buffer.subarray(newline + 1)
    return line
  }

  async #until(ready: () => boolean): Promise<void> {
    while (!ready()) {
      if (this.#error) throw this.#error
      if (this.#ended) throw new Error('git cat-file ended before answering')
      await new Promise<void>((resolve) => (this.#waiter = resolve))
    }
  }

  #wake(): void {
    const waiter = this.#waiter
    this.#waiter = null
    waiter?.()
  }

  #fail(error: Error): void {
    this.#error ??= error
    this.#wake()
  }
}

/** Raw tree format: `<octal mode> <name>\0<binary sha>` repeated. */
function parseTree(body: Buffer, shaBytes: number): TreeEntry[] {
  const entries: TreeEntry[] = []
  let at = 0
  while (at < body.length) {
    const space = body.indexOf(32, at)
    const nul = body.indexOf(0, space)
    if (space < 0 || nul < 0) break
    const mode = body.toString('latin1', at, space).padStart(6, '0')
    const name = body.toString('utf8', space + 1, nul)
    const sha = body.toString('hex', nul + 1, nul + 1 + shaBytes)
    const type = mode === '040000' ? 'tree' : mode === '160000' ? 'commit' : 'blob'
    entries.push({ mode, type, sha, name })
    at = nul + 1 + shaBytes
  }
  return entries
}
