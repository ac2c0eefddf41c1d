import { lstat, readdir } from 'node:fs/promises'
import path from 'node:path'

/** Bytes of the regular files under `dir`; symlinks count as themselves, never followed. */
export async function measureBytes(dir: string): Promise<number> {
  let total = 0
  const pending = [dir]
  for (let current = pending.pop(); current !== undefined; current = pending.pop()) {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name)
      if (entry.isDirectory()) pending.push(full)
      else total += (await lstat(full)).size
    }
  }
  return total
}

export function formatMb(bytes: number): string {
  const mb = bytes / (1024 * 1024)
  return `${mb >= 10 ? Math.round(mb) : mb.toFixed(1)} MB`
}
