import { createHash } from 'node:crypto'
import path from 'node:path/posix'

import type Docker from 'dockerode'

import { errorMessage, InfrastructureError } from '../domain/errors.ts'
import { readTar, TarFormatError, type TarEntryType } from './tar-reader.ts'

/**
 * An image's final file tree, built the way the engine builds a container's root: each
 * layer of `docker save` applied in order, whiteouts (`.wh.<name>`) removing what lower
 * layers had and opaque markers (`.wh..wh..opq`) emptying a folder. Every node remembers the
 * layer it came from, so a difference can be traced to the build step that made it.
 *
 *   const tree = await exportImageTree(docker, '127.0.0.1:5000/proctor/iris/alice@sha256:…')
 *   tree.files.get('etc/os-release')   // { type: 'file', sha256: '…', mode: 0o644, layer: 0, … }
 */
export interface TreeNode {
  readonly type: TarEntryType
  /** Permission bits (setuid, setgid and sticky included). */
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size: number
  /** Hex sha256 of a regular file's bytes; `''` for anything else. */
  readonly sha256: string
  /** A symlink's target; `''` for anything else. */
  readonly linkname: string
  /** `major:minor` for device nodes; `''` for anything else. */
  readonly device: string
  readonly xattrs: Readonly<Record<string, string>>
  /** Seconds since the epoch: reported apart, never a difference. */
  readonly mtime: number
  /** The layer it comes from: 0 is the lowest. */
  readonly layer: number
}

export interface LayerSummary {
  readonly index: number
  /** sha256 of the uncompressed layer tar: what `docker inspect` lists in RootFS.Layers. */
  readonly diffId: string
  readonly entries: number
  readonly whiteouts: number
}

export interface ImageTree {
  readonly layers: readonly LayerSummary[]
  /** Paths without a leading `/`; the root itself is not listed. */
  readonly files: ReadonlyMap<string, TreeNode>
  /** The image config's creation stamp: reported apart, never a difference. */
  readonly created: string | null
  /** Whether each layer's content hashes to the diff id the image config records. */
  readonly diffIdsMatchConfig: boolean
}

type LayerNode = Omit<TreeNode, 'layer'> & { hardlinkTo?: string }

interface LayerContent {
  diffId: string
  entries: Map<string, LayerNode>
  whiteouts: string[]
  opaque: string[]
}

interface SaveManifestEntry {
  Config: string
  Layers: string[]
}

const WHITEOUT = '.wh.'
const OPAQUE = '.wh..wh..opq'
const MAX_JSON_BYTES = 8 * 1024 * 1024

/** Exports an image from the engine (`docker save`) and builds its file tree. */
export async function exportImageTree(docker: Docker, image: string): Promise<ImageTree> {
  let stream: NodeJS.ReadableStream
  try {
    stream = await docker.getImage(image).get()
  } catch (err) {
    throw new InfrastructureError(
      `cannot export image ${image} from the engine: ${errorMessage(err)}`,
      {
        cause: err,
      },
    )
  }
  try {
    return await readImageArchive(stream as AsyncIterable<Uint8Array>)
  } catch (err) {
    if (err instanceof TarFormatError) {
      throw new InfrastructureError(
        `the engine's export of ${image} is not a readable tar: ${err.message}`,
        {
          cause: err,
        },
      )
    }
    throw err
  }
}

/** Builds the file tree from a `docker save` archive (legacy or OCI layout). */
export async function readImageArchive(source: AsyncIterable<Uint8Array>): Promise<ImageTree> {
  const layers = new Map<string, LayerContent>()
  const aliases = new Map<string, string>()
  const json = new Map<string, unknown>()

  for await (const { entry, body } of readTar(source)) {
    if (entry.type === 'symlink') {
      aliases.set(entry.path, path.join(path.dirname(entry.path), entry.linkname))
      continue
    }
    if (entry.type !== 'file') continue
    const isJson = entry.path.endsWith('.json') || entry.path === 'repositories'
    if (isJson && entry.size <= MAX_JSON_BYTES) {
      json.set(entry.path, JSON.parse((await collect(body)).toString('utf8')) as unknown)
      continue
    }
    if (entry.path.endsWith('/layer.tar')) {
      layers.set(entry.path, await readLayer(body))
      continue
    }
    if (entry.path.startsWith('blobs/')) {
      // OCI layout: a blob is a layer tar, or a JSON config or manifest.
      const { first, rest } = await peek(body)
      if (first.length > 0 && first[0] === 0x7b && entry.size <= MAX_JSON_BYTES) {
        const text = Buffer.concat([first, await collect(rest)]).toString('utf8')
        json.set(entry.path, JSON.parse(text) as unknown)
      } else {
        layers.set(entry.path, await readLayer(prepend(first, rest)))
      }
    }
  }

  const manifest = (json.get('manifest.json') as SaveManifestEntry[] | undefined)?.[0]
  if (!manifest) throw new TarFormatError('the export has no manifest.json')
  const ordered = manifest.Layers.map((layerPath) => {
    const found = layers.get(aliases.get(layerPath) ?? layerPath)
    if (!found) throw new TarFormatError(`the export lists layer ${layerPath} but does not hold it`)
    return found
  })
  const config = json.get(manifest.Config) as
    | { created?: string; rootfs?: { diff_ids?: string[] } }
    | undefined
  const diffIds = config?.rootfs?.diff_ids ?? []

  return {
    layers: ordered.map((layer, index) => ({
      index,
      diffId: layer.diffId,
      entries: layer.entries.size,
      whiteouts: layer.whiteouts.length + layer.opaque.length,
    })),
    files: applyLayers(ordered),
    created: config?.created ?? null,
    diffIdsMatchConfig:
      diffIds.length === ordered.length && ordered.every((l, i) => l.diffId === diffIds[i]),
  }
}

async function readLayer(body: AsyncIterable<Buffer>): Promise<LayerContent> {
  const layerHash = createHash('sha256')
  const tapped = tap(body, layerHash)
  const content: LayerContent = { diffId: '', entries: new Map(), whiteouts: [], opaque: [] }

  for await (const { entry, body: fileBody } of readTar(tapped)) {
    if (entry.path === '') continue
    const name = path.basename(entry.path)
    const dir = path.dirname(entry.path) === '.' ? '' : path.dirname(entry.path)
    if (name === OPAQUE) {
      content.opaque.push(dir)
      continue
    }
    if (name.startsWith(`${WHITEOUT}${WHITEOUT}`)) continue // aufs bookkeeping, not content
    if (name.startsWith(WHITEOUT)) {
      content.whiteouts.push(path.join(dir, name.slice(WHITEOUT.length)))
      continue
    }

    let sha256 = ''
    if (entry.type === 'file') {
      const fileHash = createHash('sha256')
      for await (const chunk of fileBody) fileHash.update(chunk)
      sha256 = fileHash.digest('hex')
    }
    const node: LayerNode = {
      type: entry.type,
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      size: entry.size,
      sha256,
      linkname: entry.type === 'symlink' ? entry.linkname : '',
      device:
        entry.type === 'char' || entry.type === 'block'
          ? `${entry.devmajor}:${entry.devminor}`
          : '',
      xattrs: entry.xattrs,
      mtime: entry.mtime,
    }
    if (entry.type === 'hardlink') {
      // A hard link names an earlier entry of the same layer: it is that file's content.
      const target = content.entries.get(entry.linkname.replace(/^(\.\/|\/)+/, ''))
      content.entries.set(
        entry.path,
        target
          ? { ...node, type: target.type, size: target.size, sha256: target.sha256 }
          : { ...node, hardlinkTo: entry.linkname.replace(/^(\.\/|\/)+/, '') },
      )
      continue
    }
    content.entries.set(entry.path, node)
  }
  // The reader stops at the end-of-archive block; the diff id covers every byte.
  for await (const chunk of tapped) void chunk
  content.diffId = `sha256:${layerHash.digest('hex')}`
  return content
}

function applyLayers(layers: readonly LayerContent[]): Map<string, TreeNode> {
  const files = new Map<string, TreeNode>()
  // Folders that have (or had) something below them, listed or not: a file put in their
  // place removes what was below.
  const parents = new Set<string>()
  for (const [index, layer] of layers.entries()) {
    for (const dir of layer.opaque) removeBelow(files, dir)
    for (const removed of layer.whiteouts) {
      files.delete(removed)
      removeBelow(files, removed)
    }
    for (const [filePath, node] of layer.entries) {
      if (node.type !== 'directory' && parents.has(filePath)) removeBelow(files, filePath)
      for (
        let dir = path.dirname(filePath);
        dir !== '.' && !parents.has(dir);
        dir = path.dirname(dir)
      ) {
        parents.add(dir)
      }
      const { hardlinkTo, ...rest } = node
      const target = hardlinkTo === undefined ? undefined : files.get(hardlinkTo)
      files.set(
        filePath,
        target
          ? { ...rest, type: target.type, size: target.size, sha256: target.sha256, layer: index }
          : { ...rest, layer: index },
      )
    }
  }
  return files
}

/** Removes everything under `dir` (not `dir` itself); `''` is the root. */
function removeBelow(files: Map<string, TreeNode>, dir: string): void {
  const prefix = dir === '' ? '' : `${dir}/`
  for (const key of files.keys()) if (key.startsWith(prefix) && key !== dir) files.delete(key)
}

async function* tap(
  source: AsyncIterable<Buffer>,
  hash: ReturnType<typeof createHash>,
): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hash.update(chunk)
    yield chunk
  }
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const chunk of source) parts.push(chunk)
  return Buffer.concat(parts)
}

async function peek(
  source: AsyncIterable<Buffer>,
): Promise<{ first: Buffer; rest: AsyncIterable<Buffer> }> {
  const iterator = source[Symbol.asyncIterator]()
  const head = await iterator.next()
  const rest: AsyncIterable<Buffer> = { [Symbol.asyncIterator]: () => iterator }
  return { first: head.done ? Buffer.alloc(0) : head.value, rest }
}

async function* prepend(first: Buffer, rest: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  if (first.length > 0) yield first
  yield* rest
}
