import http from 'node:http'
import net from 'node:net'

import { ProctorError } from '../../src/domain/errors.ts'

import { TEST_ENV } from './env.ts'

/**
 * Integration tests run against the real services scripts/services.sh starts. Call
 * `assertServicesUp()` in `beforeAll` so a missing service fails the file at once, with the
 * command that fixes it, instead of a timeout deep inside a test.
 */
export type Service = 'docker' | 'registry' | 'git' | 'images'

const ALL_SERVICES: readonly Service[] = ['docker', 'registry', 'git']
const CHECK_TIMEOUT_MS = 2_000

const FIX: Record<Service, string> = {
  docker: 'bash scripts/services.sh start',
  registry: 'bash scripts/services.sh start',
  git: 'bash scripts/services.sh start',
  images: 'bash scripts/base-images.sh',
}

/** Throws naming each service that does not answer and the script that starts it. */
export async function assertServicesUp(services: readonly Service[] = ALL_SERVICES): Promise<void> {
  const results = await Promise.all(
    services.map(async (service) => ({ service, problem: await checkService(service) })),
  )

  const down = results.filter(
    (r): r is { service: Service; problem: string } => r.problem !== undefined,
  )
  if (down.length === 0) return
  const fixes = [...new Set(down.map((d) => FIX[d.service]))]
  throw new ProctorError(
    'services_down',
    `not available: ${down.map((d) => `${d.service} (${d.problem})`).join(', ')}. ` +
      `Run \`${fixes.join(' && ')}\` (or \`bash scripts/setup.sh\` on a new machine), then run the tests again.`,
  )
}

/** undefined when the service answers, else what went wrong. */
function checkService(service: Service): Promise<string | undefined> {
  switch (service) {
    case 'docker':
      return expectStatus(dockerRequest('/_ping'), [200])
    case 'registry':
      return expectStatus(httpRequest({ ...hostAndPort(TEST_ENV.registryAddress), path: '/v2/' }), [
        200,
      ])
    case 'git':
      return connectTcp('127.0.0.1', TEST_ENV.gitPort)
    case 'images':
      return checkImages([TEST_ENV.busyboxImage, TEST_ENV.pythonImage])
  }
}

async function checkImages(images: readonly string[]): Promise<string | undefined> {
  const problems = await Promise.all(
    images.map(async (image) => {
      const problem = await expectStatus(
        dockerRequest(`/images/${encodeURIComponent(image)}/json`),
        [200],
      )
      return problem && `${image}: ${problem}`
    }),
  )
  const found = problems.filter((p) => p !== undefined)
  return found.length > 0 ? found.join('; ') : undefined
}

async function expectStatus(
  request: Promise<number>,
  ok: readonly number[],
): Promise<string | undefined> {
  try {
    const status = await request
    return ok.includes(status) ? undefined : `HTTP ${status}`
  } catch (err) {
    return err instanceof Error ? err.message : String(err)
  }
}

/** A request to the Docker Engine named by DOCKER_HOST (unix:// or tcp://), or its socket. */
function dockerRequest(path: string): Promise<number> {
  const host = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'
  if (host.startsWith('unix://'))
    return httpRequest({ socketPath: host.slice('unix://'.length), path })
  return httpRequest({ ...hostAndPort(host.replace(/^tcp:\/\//, '')), path })
}

function hostAndPort(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(':')
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) }
}

function httpRequest(options: http.RequestOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.get({ ...options, timeout: CHECK_TIMEOUT_MS }, (response) => {
      response.resume()
      resolve(response.statusCode ?? 0)
    })
    request.on('timeout', () => request.destroy(new Error(`no answer in ${CHECK_TIMEOUT_MS} ms`)))
    request.on('error', reject)
  })
}

function connectTcp(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: CHECK_TIMEOUT_MS })
    socket.once('connect', () => {
      socket.destroy()
      resolve(undefined)
    })
    socket.once('timeout', () => {
      socket.destroy()
      resolve(`no answer on ${host}:${port} in ${CHECK_TIMEOUT_MS} ms`)
    })
    socket.once('error', (err) => resolve(err.message))
  })
}
