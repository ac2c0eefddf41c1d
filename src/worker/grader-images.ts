import path from 'node:path'

import type Docker from 'dockerode'
import type { Logger } from 'pino'

import type { Builder } from '../build/builder.ts'
import { pushImage } from '../build/registry.ts'
import type { GraderImageResolver } from '../challenges/catalog.ts'
import type { ProctorConfig } from '../config/proctor-config.ts'
import { errorMessage, ProctorError } from '../domain/errors.ts'

/**
 * Builds an organizer phase's image from the challenge's own folder (`image: { build: dir }`)
 * and archives it in the registry, so every submission records an immutable `name@digest`
 * and any worker host can run the same grader.
 */
export function graderImageResolver(deps: {
  docker: Docker
  builder: Builder
  config: ProctorConfig
  log: Logger
}): GraderImageResolver {
  return async function resolveGraderImage(challenge, phaseName) {
    const phase = challenge.definition.phases.find((p) => p.name === phaseName)
    if (!phase || phase.image === 'participant' || !('build' in phase.image)) {
      throw new ProctorError(
        'challenge_invalid',
        `phase ${phaseName} of ${challenge.definition.id} has no image to build`,
      )
    }

    const contextDir = path.resolve(challenge.dir, phase.image.build)
    const repository = `${deps.config.registry.namespace}/graders/${challenge.definition.id}-${phaseName}`
    const log: string[] = []
    try {
      const built = await deps.builder.build({
        contextDir,
        imageName: `proctor-grader/${challenge.definition.id}-${phaseName}:latest`,
        labels: { 'proctor.challenge': challenge.definition.id, 'proctor.phase': phaseName },
        timeoutMs: 15 * 60_000,
        maxImageBytes: 16 * 1024 ** 3,
        onLog: (text) => {
          log.push(text)
          if (log.length > 200) log.shift()
        },
      })
      const pushed = await pushImage(deps.docker, {
        imageId: built.imageId,
        registry: deps.config.registry.address,
        repository,
        tag: built.imageId.replace('sha256:', '').slice(0, 16),
      })
      return pushed.reference
    } catch (err) {
      deps.log.error(
        {
          challengeId: challenge.definition.id,
          phase: phaseName,
          err: errorMessage(err),
          buildLog: log.join('').slice(-4000),
        },
        `the ${phaseName} image of challenge ${challenge.definition.id} did not build; fix ${contextDir} and restart proctor`,
      )
      throw err
    }
  }
}
