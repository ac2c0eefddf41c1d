import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type Docker from 'dockerode'
import type { Logger } from 'pino'

import type { Builder } from '../build/builder.ts'
import { DockerfileBuilder } from '../build/dockerfile-builder.ts'
import { Repo2DockerBuilder } from '../build/repo2docker.ts'

/**
 * proctor's two builders, with every cache off, for verification: a rebuild must run every
 * step again, never take a layer the engine kept from an earlier build.
 *
 * - Dockerfile builder: the Engine API's `nocache=true` on the build. The builder has no
 *   option for it, so it gets an engine client whose `buildImage` always adds it.
 * - repo2docker 2024.07.0: it has no no-cache flag, but it passes its
 *   `Repo2Docker.extra_build_kwargs` traitlet to docker-py's `APIClient.build` (app.py →
 *   buildpacks/base.py and docker.py → docker.py `build(**kwargs)`), whose `nocache` becomes
 *   the same Engine API parameter. A two-line wrapper script, written here, adds
 *   `--Repo2Docker.extra_build_kwargs=nocache=True` to every call. (A Dict traitlet on the
 *   command line takes `key=value`; the value arrives as the string `True`, which the engine
 *   reads as true.)
 *
 * Neither uses proctor's own build cache (reusing another submission's archived image):
 * that lives in the evaluation job, not in the builders. Callers give each rebuild a fresh
 * image name, so repo2docker never answers "Reusing existing image".
 */
export interface NoCacheBuilders {
  readonly builders: Readonly<Record<'repo2docker' | 'dockerfile', Builder>>
  /** Removes the wrapper script. */
  dispose(): Promise<void>
}

export const REPO2DOCKER_NO_CACHE_ARG = '--Repo2Docker.extra_build_kwargs=nocache=True'

export async function createNoCacheBuilders(
  docker: Docker,
  repo2dockerBinary: string,
  log: Logger,
): Promise<NoCacheBuilders> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'proctor-nocache-'))
  const wrapper = path.join(dir, 'repo2docker')
  await writeFile(
    wrapper,
    [
      '#!/bin/sh',
      '# Written by proctor (src/archive/no-cache-builders.ts): repo2docker without the engine layer cache.',
      // Before the caller's arguments: anything after the repository is the command to run.
      `exec ${shellQuote(path.resolve(repo2dockerBinary))} ${REPO2DOCKER_NO_CACHE_ARG} "$@"`,
      '',
    ].join('\n'),
  )
  await chmod(wrapper, 0o755)
  const engine = withoutBuildCache(docker)
  return {
    builders: {
      repo2docker: new Repo2DockerBuilder(wrapper, log, { docker }),
      dockerfile: new DockerfileBuilder(engine, log),
    },
    dispose: () => rm(dir, { recursive: true, force: true }),
  }
}

/** The same engine client, except that every image build runs with `nocache: true`. */
export function withoutBuildCache(docker: Docker): Docker {
  function buildImageWithoutCache(
    file: Parameters<Docker['buildImage']>[0],
    options?: Docker.ImageBuildOptions,
  ): Promise<NodeJS.ReadableStream> {
    return docker.buildImage(file, { ...options, nocache: true })
  }
  return new Proxy(docker, {
    get(target, property, receiver) {
      if (property === 'buildImage') return buildImageWithoutCache
      const value: unknown = Reflect.get(target, property, receiver)
      return typeof value === 'function'
        ? (value as (...args: unknown[]) => unknown).bind(target)
        : value
    },
  })
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`
}
