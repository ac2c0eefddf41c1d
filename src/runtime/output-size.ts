import { chmod, chown, lstat, mkdir, readdir } from 'node:fs/promises'
import path from 'node:path'

/**
 * The size of an output folder: the apparent sizes of the files in it, every level down.
 * Symbolic links are counted as links and never followed (a container can point one at any
 * host path). Files that vanish during the walk are skipped: the container may still be
 * writing.
 *
 * With `stopAbove`, the walk ends as soon as the total passes it, so a watchdog polling a
 * huge folder does not read all of it each time. The walk uses a stack, not recursion: the
 * depth of the folder is the container's choice.
 *
 * Limit: entries are not counted, so a phase can create many empty files up to its time
 * limit. Keep output folders on a filesystem of their own.
 */
export async function measureTree(
  root: string,
  options: { stopAbove?: number } = {},
): Promise<number> {
  const stopAbove = options.stopAbove ?? Number.POSITIVE_INFINITY
  let total = 0
  const folders = [root]
  for (let folder = folders.pop(); folder !== undefined; folder = folders.pop()) {
    const entries = await readdirIfPresent(folder)
    for (const entry of entries) {
      const full = path.join(folder, entry.name)
      if (entry.isDirectory()) {
        folders.push(full)
        continue
      }
      total += await sizeIfPresent(full)
      if (total > stopAbove) return total
    }
  }
  return total
}

/**
 * Creates the output folder if needed and makes it writable by the container's user: owned
 * by that uid and gid when proctor runs as root, else open to all (the folder is the run's
 * own).
 */
export async function prepareOutputFolder(folder: string, uid: number, gid: number): Promise<void> {
  await mkdir(folder, { recursive: true })
  if (process.getuid?.() === 0) await chown(folder, uid, gid)
  else await chmod(folder, 0o777)
}

async function readdirIfPresent(folder: string) {
  try {
    return await readdir(folder, { withFileTypes: true })
  } catch (err) {
    if (isGone(err)) return []
    throw err
  }
}

async function sizeIfPresent(file: string): Promise<number> {
  try {
    return (await lstat(file)).size
  } catch (err) {
    if (isGone(err)) return 0
    throw err
  }
}

function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return code === 'ENOENT' || code === 'ENOTDIR'
}
