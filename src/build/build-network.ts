import type Docker from 'dockerode'
import type { Logger } from 'pino'

import { InfrastructureError } from '../domain/errors.ts'

/**
 * The Docker network image builds run on. A build's `RUN` steps (and repo2docker's
 * `postBuild`) are the participant's code: on this network they reach the internet (package
 * mirrors) but not this host, private address ranges or cloud metadata, which
 * `scripts/build-network.sh` enforces with iptables rules on the network's bridge.
 *
 * `null` builds on the engine's default network (the default bridge), with no such limits.
 */
export type BuildNetworkOption = string | null

/** The network `scripts/build-network.sh` creates; builders use it unless told otherwise. */
export const BUILD_NETWORK = 'proctor-build'

/**
 * The network to pass to the engine for one build, or null for the engine's default.
 *
 * A configured network that does not exist falls back to the default bridge with a warning
 * rather than failing: `proctor local-run` on a participant's machine, or a bare engine,
 * still builds. A worker host must run `scripts/build-network.sh` (services.sh does), or its
 * builds reach what the host reaches. Checked on every build: an engine can lose or regain
 * the network at any time, and the inspect costs a few milliseconds.
 */
export async function resolveBuildNetwork(
  docker: Docker,
  network: BuildNetworkOption,
  log: Logger,
): Promise<string | null> {
  if (network === null) return null
  try {
    await docker.getNetwork(network).inspect()
    return network
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode
    if (status === undefined) {
      throw new InfrastructureError(
        `proctor could not reach the Docker Engine to check the build network ${network}: ${String(err)}`,
        { cause: err },
      )
    }
    if (status !== 404) {
      throw new InfrastructureError(
        `the Docker Engine answered ${status} when asked for the build network ${network}: ${String(err)}`,
        { cause: err },
      )
    }
  }
  log.warn(
    { network },
    `build network ${network} does not exist: building on the engine's default network, where build steps can reach this host and private networks; run scripts/build-network.sh`,
  )
  return null
}
