import type { ImageTree, TreeNode } from './image-tree.ts'

/**
 * Compares an archived image's file tree with a rebuild's, file by file: type, content
 * (sha256), permission bits, owner (uid:gid), link target, device numbers and extended
 * attributes. Modification times are counted apart and never make a difference: a rebuild
 * stamps every file anew. Differences are told from the archive's side: `added` is in the
 * archive but not in the rebuild, `removed` is in the rebuild but not in the archive.
 *
 * Paths under a `.git` folder are not compared: proctor's clone writes them (index stat data,
 * reflog times), not the participant's source, and they differ on every fetch. Their count is
 * reported.
 */
export type DifferenceKind = 'added' | 'removed' | 'changed'
export type DifferenceField = 'type' | 'content' | 'mode' | 'owner' | 'link' | 'device' | 'xattrs'

export interface FileSide {
  readonly layer: number
  readonly type: string
  readonly mode: string
  readonly owner: string
  readonly size: number
  readonly sha256: string
}

export interface FileDifference {
  /** With a leading `/`. */
  readonly path: string
  readonly kind: DifferenceKind
  readonly fields: readonly DifferenceField[]
  readonly archive: FileSide | null
  readonly rebuild: FileSide | null
}

export interface TreeComparison {
  readonly identical: boolean
  /** Paths compared (in either tree, `.git` excluded). */
  readonly compared: number
  readonly differenceCount: number
  /** The first `maxListed` differences, in path order. */
  readonly differences: readonly FileDifference[]
  /** Differences per layer of each image, by where the differing file came from. */
  readonly byLayer: {
    readonly archive: Readonly<Record<string, number>>
    readonly rebuild: Readonly<Record<string, number>>
  }
  /** Files equal in everything compared whose modification times differ. */
  readonly mtimeOnly: number
  readonly notCompared: { readonly vcsMetadata: number }
}

export interface CompareOptions {
  /** How many differences to list (all are counted). Default 200. */
  readonly maxListed?: number
}

const DEFAULT_MAX_LISTED = 200

export function compareTrees(
  archive: ImageTree,
  rebuild: ImageTree,
  options: CompareOptions = {},
): TreeComparison {
  const maxListed = options.maxListed ?? DEFAULT_MAX_LISTED
  const paths = [...new Set([...archive.files.keys(), ...rebuild.files.keys()])].sort()
  const differences: FileDifference[] = []
  const byArchiveLayer: Record<string, number> = {}
  const byRebuildLayer: Record<string, number> = {}
  let count = 0
  let compared = 0
  let mtimeOnly = 0
  let vcsMetadata = 0

  for (const filePath of paths) {
    if (isVcsMetadata(filePath)) {
      vcsMetadata++
      continue
    }
    compared++
    const a = archive.files.get(filePath)
    const b = rebuild.files.get(filePath)
    const fields = a && b ? differingFields(a, b) : []
    if (a && b && fields.length === 0) {
      if (a.mtime !== b.mtime) mtimeOnly++
      continue
    }

    count++
    if (a) byArchiveLayer[a.layer] = (byArchiveLayer[a.layer] ?? 0) + 1
    if (b) byRebuildLayer[b.layer] = (byRebuildLayer[b.layer] ?? 0) + 1
    if (differences.length < maxListed) {
      differences.push({
        path: `/${filePath}`,
        kind: !b ? 'added' : !a ? 'removed' : 'changed',
        fields,
        archive: a ? side(a) : null,
        rebuild: b ? side(b) : null,
      })
    }
  }

  return {
    identical: count === 0,
    compared,
    differenceCount: count,
    differences,
    byLayer: { archive: byArchiveLayer, rebuild: byRebuildLayer },
    mtimeOnly,
    notCompared: { vcsMetadata },
  }
}

function differingFields(a: TreeNode, b: TreeNode): DifferenceField[] {
  const fields: DifferenceField[] = []
  if (a.type !== b.type) fields.push('type')
  if (a.sha256 !== b.sha256) fields.push('content')
  // A symlink's own mode means nothing on Linux.
  if (a.mode !== b.mode && a.type !== 'symlink') fields.push('mode')
  if (a.uid !== b.uid || a.gid !== b.gid) fields.push('owner')
  if (a.linkname !== b.linkname) fields.push('link')
  if (a.device !== b.device) fields.push('device')
  if (!sameRecord(a.xattrs, b.xattrs)) fields.push('xattrs')
  return fields
}

function side(node: TreeNode): FileSide {
  return {
    layer: node.layer,
    type: node.type,
    mode: node.mode.toString(8).padStart(4, '0'),
    owner: `${node.uid}:${node.gid}`,
    size: node.size,
    sha256: node.sha256,
  }
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) {
  const keys = Object.keys(a)
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k])
}

function isVcsMetadata(filePath: string): boolean {
  return /(^|\/)\.git(\/|$)/.test(filePath)
}
