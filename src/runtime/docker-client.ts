import Docker from 'dockerode'

/** dockerd 20.10, the engine on proctor's machines, serves API 1.41 at most. */
export const DOCKER_API_VERSION = 'v1.41'

/**
 * A Docker client pinned to API 1.41, reaching the engine through DOCKER_HOST (or the local
 * socket).
 *
 * The modem's `timeout` is an idle-socket timeout on every request: it would cut a container
 * wait or a quiet log stream. It stays unset, and is cleared even when DOCKER_CLIENT_TIMEOUT
 * sets it; every long call takes an abort signal instead.
 *
 *   const runtime = new DockerRuntime({ docker: connectDocker(), logger })
 */
export function connectDocker(options: Docker.DockerOptions = {}): Docker {
  return new Docker({ ...options, timeout: undefined, version: DOCKER_API_VERSION })
}

/** The HTTP status of an engine error (404 no such container, 409 not running…), if any. */
export function engineStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('statusCode' in err)) return undefined
  return typeof err.statusCode === 'number' ? err.statusCode : undefined
}
