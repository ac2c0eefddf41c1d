import { describe, expect, it } from 'vitest'

import { buildImageArchive, chunked, type TarSpec } from '../../test/archive/support/tar-builder.ts'
import { readImageArchive } from './image-tree.ts'
import { compareTrees } from './tree-diff.ts'

const base: TarSpec[] = [
  { path: 'etc/', type: 'directory' },
  { path: 'etc/os-release', content: 'NAME=base\n' },
  { path: 'etc/passwd', content: 'root:x:0:0\n' },
  { path: 'opt/', type: 'directory' },
  { path: 'opt/a', content: 'a' },
  { path: 'opt/b', content: 'b' },
  { path: 'usr/bin/tool', content: 'tool', mode: 0o755 },
  { path: 'usr/bin/same', type: 'hardlink', linkname: 'usr/bin/tool' },
]

async function tree(layers: TarSpec[][]) {
  const { archive, diffIds } = buildImageArchive(layers)
  return { tree: await readImageArchive(chunked(archive, 4096)), diffIds }
}

describe('readImageArchive', () => {
  it('applies layers in order: later files win, whiteouts remove, opaque folders empty', async () => {
    const { tree: image, diffIds } = await tree([
      base,
      [
        { path: 'etc/os-release', content: 'NAME=changed\n' },
        { path: 'etc/.wh.passwd', content: '' },
        { path: 'opt/.wh..wh..opq', content: '' },
        { path: 'opt/c', content: 'c' },
        {
          path: 'home/participant/app/run.sh',
          content: '#!/bin/sh\n',
          mode: 0o755,
          uid: 1000,
          gid: 1000,
        },
      ],
    ])

    expect(image.layers.map((l) => l.diffId)).toEqual(diffIds)
    expect(image.diffIdsMatchConfig).toBe(true)
    expect(image.created).toBe('2026-01-01T00:00:00Z')
    expect(image.files.get('etc/os-release')).toMatchObject({ layer: 1, size: 13 })
    expect(image.files.has('etc/passwd')).toBe(false)
    expect([...image.files.keys()].filter((p) => p.startsWith('opt/'))).toEqual(['opt/c'])
    expect(image.files.get('home/participant/app/run.sh')).toMatchObject({
      mode: 0o755,
      uid: 1000,
      gid: 1000,
      layer: 1,
    })
    // A hard link is the file it points to.
    expect(image.files.get('usr/bin/same')).toMatchObject({
      type: 'file',
      sha256: image.files.get('usr/bin/tool')?.sha256,
    })
  })

  it('removes a whole folder named by a whiteout, and a folder a file replaces', async () => {
    const { tree: image } = await tree([
      base,
      [
        { path: '.wh.opt', content: '' },
        { path: 'usr/bin', content: 'now a file' },
      ],
    ])
    expect([...image.files.keys()].filter((p) => p.startsWith('opt'))).toEqual([])
    expect(image.files.get('usr/bin')?.type).toBe('file')
    expect(image.files.has('usr/bin/tool')).toBe(false)
  })
})

describe('compareTrees', () => {
  it('calls a rebuild identical when only times and layer digests differ', async () => {
    const archived = await tree([base, [{ path: 'app/run.sh', content: 'run', mtime: 1 }]])
    const rebuilt = await tree([
      base.map((e) => ({ ...e, mtime: 1_800_000_000 })),
      [{ path: 'app/run.sh', content: 'run', mtime: 2 }],
    ])

    const comparison = compareTrees(archived.tree, rebuilt.tree)

    expect(rebuilt.diffIds).not.toEqual(archived.diffIds)
    expect(comparison).toMatchObject({ identical: true, differenceCount: 0, differences: [] })
    expect(comparison.mtimeOnly).toBeGreaterThan(0)
  })

  it('names each differing file with what differs and the layer it came from', async () => {
    const archived = await tree([
      base,
      [
        { path: 'etc/os-release', content: 'NAME=tampered\n' },
        { path: 'app/run.sh', content: 'run', mode: 0o777, uid: 1000 },
        { path: 'app/extra', content: 'planted' },
      ],
    ])
    const rebuilt = await tree([
      base,
      [
        { path: 'app/run.sh', content: 'run', mode: 0o755, uid: 0 },
        { path: 'app/only-rebuild', content: 'x' },
      ],
    ])

    const comparison = compareTrees(archived.tree, rebuilt.tree)

    expect(comparison.identical).toBe(false)
    expect(comparison.differences.map((d) => [d.kind, d.path, d.fields])).toEqual([
      ['added', '/app/extra', []],
      ['removed', '/app/only-rebuild', []],
      ['changed', '/app/run.sh', ['mode', 'owner']],
      ['changed', '/etc/os-release', ['content']],
    ])
    const osRelease = comparison.differences.find((d) => d.path === '/etc/os-release')
    expect(osRelease?.archive?.layer).toBe(1)
    expect(osRelease?.rebuild?.layer).toBe(0)
    expect(comparison.byLayer.archive).toEqual({ 1: 3 })
  })

  it('leaves .git contents out of the comparison and counts them', async () => {
    const archived = await tree([
      [
        { path: 'app/.git/index', content: 'stat data 1' },
        { path: 'app/x', content: 'x' },
      ],
    ])
    const rebuilt = await tree([
      [
        { path: 'app/.git/index', content: 'stat data 2' },
        { path: 'app/x', content: 'x' },
      ],
    ])
    const comparison = compareTrees(archived.tree, rebuilt.tree)
    expect(comparison).toMatchObject({ identical: true, notCompared: { vcsMetadata: 1 } })
  })
})
