import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'

import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { measureTree } from './output-size.ts'

describe('measureTree', () => {
  let root: string

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'proctor-output-size-'))
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('adds the sizes of files at every level', async () => {
    await mkdir(path.join(root, 'a/b/c'), { recursive: true })
    await writeFile(path.join(root, 'top.csv'), 'x'.repeat(100))
    await writeFile(path.join(root, 'a/b/c/deep.bin'), Buffer.alloc(5000))
    expect(await measureTree(root)).toBe(5100)
  })

  it('counts a symbolic link as a link, not as what it points at', async () => {
    const big = path.join(root, '..', `${path.basename(root)}-big`)
    await writeFile(big, Buffer.alloc(1_000_000))
    try {
      await symlink(big, path.join(root, 'link'))
      await symlink('/', path.join(root, 'root-link'))
      expect(await measureTree(root)).toBeLessThan(1000)
    } finally {
      await rm(big, { force: true })
    }
  })

  it('stops early once past a bound', async () => {
    for (let i = 0; i < 20; i++) await writeFile(path.join(root, `f${i}`), Buffer.alloc(1000))
    const partial = await measureTree(root, { stopAbove: 2500 })
    expect(partial).toBeGreaterThan(2500)
    expect(partial).toBeLessThan(20_000)
  })

  it('reads a missing folder as empty', async () => {
    expect(await measureTree(path.join(root, 'missing'))).toBe(0)
  })
})
