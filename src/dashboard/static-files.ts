import { createHash } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'

export interface StaticFile {
  readonly body: Buffer
  readonly type: string
  readonly etag: string
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
}

/**
 * The dashboard's files, read once when the server starts: a handful of small files, served
 * from memory, each with an ETag so a browser revalidates instead of downloading again.
 * Keys are paths relative to the folder, with `/`.
 */
export function loadStaticFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>()
  function walk(folder: string): void {
    for (const name of readdirSync(folder)) {
      const full = path.join(folder, name)
      if (statSync(full).isDirectory()) {
        walk(full)
        continue
      }
      const type = TYPES[path.extname(name)]
      if (!type) continue
      const body = readFileSync(full)
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`
      files.set(path.relative(dir, full).split(path.sep).join('/'), { body, type, etag })
    }
  }
  walk(dir)
  return files
}
