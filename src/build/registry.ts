import { setTimeout as sleep } from 'node:timers/promises'

import type Docker from 'dockerode'
import type { Logger } from 'pino'

import { errorMessage, InfrastructureError, ProctorError } from '../domain/errors.ts'

/**
 * The archive: every submission's image pushed to the private registry and pinned by digest.
 *
 *   const { reference } = await pushImage(docker, {
 *     imageId, registry: '127.0.0.1:5000', repository: 'proctor/mnist/alice/solution', tag,
 *   })
 *   // reference = '127.0.0.1:5000/proctor/mnist/alice/solution@sha256:…'
 */
export interface RegistryAuth {
  username: string
  password: string
}

export interface PushImageOptions {
  imageId: string
  /** `host:port`; plain HTTP on loopback, HTTPS elsewhere (or give `http://…` explicitly). */
  registry: string
  repository: string
  tag: string
  auth?: RegistryAuth
  signal?: AbortSignal
  logger?: Logger
  /** Waits before the 2nd and 3rd tries. */
  retryDelaysMs?: readonly number[]
}

export interface PushedImage {
  digest: string
  /** `registry/repository@sha256:…`, what later runs pull. */
  reference: string
}

export interface RegistryRequestOptions {
  auth?: RegistryAuth
  signal?: AbortSignal
}

/** Without these the registry converts to an old format whose digest differs. */
export const MANIFEST_ACCEPT =
  'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json'
const DEFAULT_RETRY_DELAYS_MS = [1000, 4000]
const REGISTRY_TIMEOUT_MS = 30_000
const DIGEST = /^sha256:[0-9a-f]{64}$/

/**
 * Tags the image for the registry, pushes it, and confirms the registry serves the tag at the
 * digest the push reported. Tries three times; then throws `InfrastructureError`.
 */
export async function pushImage(docker: Docker, options: PushImageOptions): Promise<PushedImage> {
  const delays = options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS
  const target = `${hostOf(options.registry)}/${options.repository}`
  let lastError: unknown
  for (let attempt = 1; attempt <= delays.length + 1; attempt++) {
    const started = Date.now()
    try {
      const digest = await pushOnce(docker, options, target)
      const reference = `${target}@${digest}`
      options.logger?.info(
        { reference, attempt, durationMs: Date.now() - started },
        'image pushed and confirmed by the registry',
      )
      return { digest, reference }
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason
      lastError = err
      const delay = delays[attempt - 1]
      if (delay === undefined) break
      options.logger?.warn(
        { target: `${target}:${options.tag}`, attempt, err: errorMessage(err), retryInMs: delay },
        'image push failed; retrying',
      )
      try {
        await sleep(delay, undefined, { signal: options.signal })
      } catch {
        throw options.signal?.reason
      }
    }
  }
  throw new InfrastructureError(
    `pushing ${options.imageId} to ${target}:${options.tag} failed ${tries(delays.length + 1)}: ${errorMessage(lastError)}`,
    { cause: lastError },
  )
}

/** Whether the registry has a manifest with this digest in this repository. */
export async function manifestExists(
  registry: string,
  repository: string,
  digest: string,
  options: RegistryRequestOptions = {},
): Promise<boolean> {
  const response = await registryRequest('HEAD', registry, repository, checkDigest(digest), options)
  if (response.status === 200) return true
  if (response.status === 404) return false
  throw new InfrastructureError(
    `registry ${registry} answered ${response.status} for ${repository}@${digest}`,
  )
}

/**
 * Deletes a manifest (and every tag pointing at it) by digest; true if it was there. Disk
 * space comes back only at the registry's next garbage collection.
 */
export async function deleteManifest(
  registry: string,
  repository: string,
  digest: string,
  options: RegistryRequestOptions = {},
): Promise<boolean> {
  const response = await registryRequest(
    'DELETE',
    registry,
    repository,
    checkDigest(digest),
    options,
  )
  if (response.status === 202) return true
  if (response.status === 404) return false
  const hint =
    response.status === 405 ? ' (deletes are disabled, or the registry is read-only)' : ''
  throw new InfrastructureError(
    `registry ${registry} refused to delete ${repository}@${digest}: ${response.status}${hint}`,
  )
}

async function pushOnce(
  docker: Docker,
  options: PushImageOptions,
  target: string,
): Promise<string> {
  options.signal?.throwIfAborted()
  await docker.getImage(options.imageId).tag({ repo: target, tag: options.tag })

  const stream = await docker.getImage(target).push({
    tag: options.tag,
    ...(options.auth
      ? { authconfig: { ...options.auth, serveraddress: hostOf(options.registry) } }
      : {}),
    abortSignal: options.signal,
  })
  const pushed = await readPushStream(stream)
  if (pushed.error) throw new Error(`the engine reported: ${pushed.error}`)
  if (!pushed.digest) throw new Error('the push finished without reporting a digest')

  const response = await registryRequest(
    'HEAD',
    options.registry,
    options.repository,
    options.tag,
    options,
  )
  const served = response.headers.get('docker-content-digest')
  if (response.status !== 200 || !served) {
    throw new Error(
      `the registry answered ${response.status} for ${options.repository}:${options.tag} after the push`,
    )
  }
  if (served !== pushed.digest) {
    throw new Error(
      `the registry serves ${served} for ${options.repository}:${options.tag}, the push reported ${pushed.digest}`,
    )
  }
  return served
}

/** Scans every push event: the engine answers 200 and reports failures inside the stream. */
function readPushStream(
  stream: NodeJS.ReadableStream,
): Promise<{ digest: string | null; error: string | null }> {
  return new Promise((resolve, reject) => {
    let digest: string | null = null
    let error: string | null = null
    let partial = ''
    const handle = (line: string) => {
      if (line.trim() === '') return
      let event: PushEvent
      try {
        event = JSON.parse(line) as PushEvent
      } catch {
        error ??= `unreadable push output: ${line.slice(0, 200)}`
        return
      }
      const message = event.errorDetail?.message ?? event.error
      if (message) error ??= message
      const fromStatus = /digest: (sha256:[0-9a-f]{64})/.exec(event.status ?? '')?.[1]
      digest = event.aux?.Digest ?? fromStatus ?? digest
    }
    stream.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n')
      partial = lines.pop() ?? ''
      lines.forEach(handle)
    })
    stream.on('end', () => {
      handle(partial)
      resolve({ digest, error })
    })
    stream.on('error', reject)
  })
}

interface PushEvent {
  status?: string
  error?: string
  errorDetail?: { message?: string }
  aux?: { Tag?: string; Digest?: string; Size?: number }
}

async function registryRequest(
  method: 'HEAD' | 'DELETE',
  registry: string,
  repository: string,
  reference: string,
  options: RegistryRequestOptions,
): Promise<Response> {
  const url = `${baseUrl(registry)}/v2/${repository}/manifests/${reference}`
  const headers: Record<string, string> = { Accept: MANIFEST_ACCEPT }
  if (options.auth) {
    const basic = Buffer.from(`${options.auth.username}:${options.auth.password}`).toString(
      'base64',
    )
    headers.Authorization = `Basic ${basic}`
  }
  const timeout = AbortSignal.timeout(REGISTRY_TIMEOUT_MS)
  try {
    return await fetch(url, {
      method,
      headers,
      signal: options.signal ? AbortSignal.any([options.signal, timeout]) : timeout,
    })
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason
    throw new InfrastructureError(
      `cannot reach registry ${registry} (${method} ${repository}@${reference}): ${errorMessage(err)}`,
      { cause: err },
    )
  }
}

function checkDigest(digest: string): string {
  if (!DIGEST.test(digest))
    throw new ProctorError('invalid_digest', `${JSON.stringify(digest)} is not a sha256 digest`)
  return digest
}

function hostOf(registry: string): string {
  return registry.replace(/^https?:\/\//, '').replace(/\/+$/, '')
}

function baseUrl(registry: string): string {
  if (/^https?:\/\//.test(registry)) return registry.replace(/\/+$/, '')
  const host = hostOf(registry)
  const isLoopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(host)
  return `${isLoopback ? 'http' : 'https'}://${host}`
}

function tries(count: number): string {
  return count === 1 ? 'once' : `${count} times`
}
