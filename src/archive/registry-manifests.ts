import { createHash } from 'node:crypto'

import { MANIFEST_ACCEPT, type RegistryAuth } from '../build/registry.ts'
import { errorMessage, InfrastructureError } from '../domain/errors.ts'

/**
 * Reading image manifests from the registry (distribution 2.8 API): which blobs an archived
 * image holds and how big each is as stored (compressed layers, the config, the manifest
 * itself). Manifests are addressed by digest, so what is read is checked against it.
 *
 *   const manifest = await fetchManifest('127.0.0.1:5000', 'proctor/iris/alice', 'sha256:…')
 *   manifest?.layers  // [{ digest: 'sha256:…', size: 45164526 }, …]
 */
export interface BlobRef {
  readonly digest: string
  readonly size: number
}

export interface ImageManifest {
  readonly digest: string
  readonly mediaType: string
  /** The manifest's own size: the registry stores it as a blob too. */
  readonly manifestBytes: number
  readonly config: BlobRef
  readonly layers: readonly BlobRef[]
}

/** `registry/repository@sha256:…` split into its parts. */
export interface ImageReference {
  readonly registry: string
  readonly repository: string
  readonly digest: string
}

const TIMEOUT_MS = 30_000
const SINGLE_IMAGE_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
])

/** Null when the reference is not `host[:port]/path@sha256:<64 hex>`. */
export function parseImageReference(reference: string): ImageReference | null {
  const match = /^([^/]+)\/(.+)@(sha256:[0-9a-f]{64})$/.exec(reference)
  if (!match?.[1] || !match[2] || !match[3]) return null
  const host = match[1]
  if (!host.includes('.') && !host.includes(':') && host !== 'localhost') return null
  return { registry: host, repository: match[2], digest: match[3] }
}

/** The manifest, or null when the registry does not have it (deleted, or never pushed). */
export async function fetchManifest(
  registry: string,
  repository: string,
  digest: string,
  options: { auth?: RegistryAuth; signal?: AbortSignal } = {},
): Promise<ImageManifest | null> {
  const url = `${registryUrl(registry)}/v2/${repository}/manifests/${digest}`
  let response: Response
  try {
    response = await fetch(url, {
      headers: { Accept: MANIFEST_ACCEPT, ...authHeader(options.auth) },
      signal: options.signal
        ? AbortSignal.any([options.signal, AbortSignal.timeout(TIMEOUT_MS)])
        : AbortSignal.timeout(TIMEOUT_MS),
    })
  } catch (err) {
    throw new InfrastructureError(
      `cannot reach registry ${registry} for ${repository}@${digest}: ${errorMessage(err)}`,
      { cause: err },
    )
  }
  if (response.status === 404) return null
  if (response.status !== 200) {
    throw new InfrastructureError(
      `registry ${registry} answered ${response.status} for the manifest ${repository}@${digest}`,
    )
  }

  const body = Buffer.from(await response.arrayBuffer())
  const actual = `sha256:${createHash('sha256').update(body).digest('hex')}`
  if (actual !== digest) {
    throw new InfrastructureError(
      `registry ${registry} served ${repository}@${digest} with content hashing to ${actual}; the registry's storage may be corrupt`,
    )
  }
  const parsed = JSON.parse(body.toString('utf8')) as {
    mediaType?: string
    config?: BlobRef
    layers?: BlobRef[]
  }
  const mediaType = parsed.mediaType ?? response.headers.get('content-type') ?? ''
  if (!SINGLE_IMAGE_TYPES.has(mediaType) || !parsed.config || !parsed.layers) {
    throw new InfrastructureError(
      `${repository}@${digest} is a ${mediaType || 'manifest of unknown type'}; proctor archives single-platform images only`,
    )
  }
  return {
    digest,
    mediaType,
    manifestBytes: body.length,
    config: { digest: parsed.config.digest, size: parsed.config.size },
    layers: parsed.layers.map((l) => ({ digest: l.digest, size: l.size })),
  }
}

/** Plain HTTP on loopback, HTTPS elsewhere, unless the address names its scheme. */
export function registryUrl(registry: string): string {
  if (/^https?:\/\//.test(registry)) return registry.replace(/\/+$/, '')
  const isLoopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(registry)
  return `${isLoopback ? 'http' : 'https'}://${registry}`
}

export function authHeader(auth: RegistryAuth | undefined): Record<string, string> {
  if (!auth) return {}
  const basic = Buffer.from(`${auth.username}:${auth.password}`).toString('base64')
  return { Authorization: `Basic ${basic}` }
}
