import { lstat, readdir } from 'node:fs/promises'
import path from 'node:path'

/**
 * What a folder holds on disk: the bytes of its files (their sizes, what `du -sb` counts
 * for files) and the space allocated to files and folders (`du -s`, in blocks). Symlinks
 * count as themselves, never followed; a missing folder holds nothing.
 */
export interface DiskUsage {
  readonly files: number
  readonly fileBytes: number
  readonly allocatedBytes: number
}

export async function diskUsage(dir: string): Promise<DiskUsage> {
  let files = 0
  let fileBytes = 0
  let allocatedBytes = 0
  const pending = [dir]
  for (let current = pending.pop(); current !== undefined; current = pending.pop()) {
    let entries
    try {
      entries = await readdir(current, { withFileTypes: true })
      allocatedBytes += (await lstat(current)).blocks * 512
    } catch (err) {
      // Garbage collection removes folders while they are walked.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw err
    }
    for (const entry of entries) {
      const full = path.join(current, entry.name)
      if (entry.isDirectory()) {
        pending.push(full)
        continue
      }
      try {
        const info = await lstat(full)
        files++
        fileBytes += info.size
        allocatedBytes += info.blocks * 512
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    }
  }
  return { files, fileBytes, allocatedBytes }
}
