import { describe, expect, it } from 'vitest'

import { distinctBlobs, exclusiveBlobs } from './accounting.ts'
import type { ImageManifest } from './registry-manifests.ts'

function manifest(
  digest: string,
  layers: [string, number][],
  config = 100,
  bytes = 500,
): ImageManifest {
  return {
    digest,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    manifestBytes: bytes,
    config: { digest: `${digest}-config`, size: config },
    layers: layers.map(([d, size]) => ({ digest: d, size })),
  }
}

describe('blob accounting', () => {
  const base: [string, number] = ['base', 45_000_000]
  const a = manifest('a', [base, ['a1', 1000]])
  const b = manifest('b', [base, ['b1', 2000]])
  const c = manifest('c', [base, ['a1', 1000], ['c1', 3000]])

  it('counts a layer shared by many images once', () => {
    expect(distinctBlobs([a, b, c])).toEqual({
      blobs: 10,
      bytes: 45_000_000 + 1000 + 2000 + 3000 + 3 * 600,
    })
    // The same manifest listed twice (two submissions reusing one build) is one image.
    expect(distinctBlobs([a, a])).toEqual(distinctBlobs([a]))
  })

  it('frees only what no other image uses', () => {
    expect(exclusiveBlobs([a], [b, c])).toEqual({ blobs: 2, bytes: 600 })
    expect(exclusiveBlobs([a, c], [b])).toEqual({ blobs: 6, bytes: 1000 + 3000 + 1200 })
    expect(exclusiveBlobs([a, b, c], [])).toEqual(distinctBlobs([a, b, c]))
  })
})
