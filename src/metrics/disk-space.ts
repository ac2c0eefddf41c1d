import { existsSync } from 'node:fs'
import { statfs } from 'node:fs/promises'
import path from 'node:path'

export interface DiskSpace {
  /** The folder asked about. */
  readonly path: string
  /** Bytes an unprivileged process can still write. */
  readonly freeBytes: number
  readonly sizeBytes: number
}

/**
 * Free space of the file system holding `folder`. A folder not made yet (the work folder
 * before the first build) is measured at its nearest existing parent: same file system.
 */
export async function diskSpace(folder: string): Promise<DiskSpace> {
  let probe = path.resolve(folder)
  while (!existsSync(probe) && path.dirname(probe) !== probe) probe = path.dirname(probe)
  const stats = await statfs(probe)
  return {
    path: folder,
    freeBytes: stats.bavail * stats.bsize,
    sizeBytes: stats.blocks * stats.bsize,
  }
}
