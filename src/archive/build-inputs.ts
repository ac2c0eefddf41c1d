import { readFile } from 'node:fs/promises'
import path from 'node:path'

import type Docker from 'dockerode'
import { z } from 'zod'

import type { BuildRequest, BuildResult } from '../build/builder.ts'

/**
 * What a rebuild needs that the submission's other columns do not keep, recorded after the
 * build (`submissions.build_inputs_json`): the base image the Dockerfile's FROM resolved to
 * (its id, which names its content), the buildpack repo2docker chose, the build settings and
 * proctor's version. With the repository, commit, builder and version, image digest,
 * challenge snapshot, data hash and grader images already on the submission, that is
 * everything a re-run or a verification uses.
 *
 *   const inputs = await describeBuildInputs(docker, result, request, { contextDir, proctorVersion })
 *   // { v: 1, baseImage: { name: 'proctor/python:3.11', id: 'sha256:80258f…' }, buildpack: 'DockerBuildPack', … }
 */
const buildInputsSchema = z.object({
  v: z.literal(1),
  baseImage: z.object({ name: z.string().nullable(), id: z.string() }).nullable(),
  buildpack: z.string().nullable(),
  proctorVersion: z.string(),
  settings: z.object({
    builder: z.enum(['repo2docker', 'dockerfile']),
    builderVersion: z.string(),
    timeoutMs: z.number(),
    memoryBytes: z.number().nullable(),
    maxImageBytes: z.number(),
    labels: z.record(z.string(), z.string()),
  }),
})

export type BuildInputs = z.infer<typeof buildInputsSchema>

export async function describeBuildInputs(
  docker: Docker,
  result: BuildResult,
  request: Pick<BuildRequest, 'timeoutMs' | 'memoryBytes' | 'maxImageBytes' | 'labels'>,
  options: { contextDir: string; proctorVersion: string },
): Promise<BuildInputs> {
  return {
    v: 1,
    baseImage: await findBaseImage(docker, result.imageId, options.contextDir),
    buildpack: result.buildpack,
    proctorVersion: options.proctorVersion,
    settings: {
      builder: result.builder,
      builderVersion: result.builderVersion,
      timeoutMs: request.timeoutMs,
      memoryBytes: request.memoryBytes ?? null,
      maxImageBytes: request.maxImageBytes,
      labels: request.labels,
    },
  }
}

/** Null for a missing or unreadable record (submissions built before it was kept). */
export function parseBuildInputs(json: string | null): BuildInputs | null {
  if (!json) return null
  try {
    const parsed = buildInputsSchema.safeParse(JSON.parse(json))
    return parsed.success ? parsed.data : null
  } catch {
    return null
  }
}

const historySchema = z.array(
  z.object({ Id: z.string(), Tags: z.array(z.string()).nullable().optional() }).loose(),
)

/** Names proctor gives its own images: never a participant's base. */
const OWN_IMAGE = /^(proctor-build|proctor-verify|proctor-grader)\/|^[^/]+:\d+\//

/**
 * The image the build started from. The Dockerfile's last FROM (following stage aliases),
 * when it names an image in the built image's history; else the newest tagged ancestor that
 * is not one of proctor's own images (repo2docker's generated Dockerfiles).
 */
export async function findBaseImage(
  docker: Docker,
  imageId: string,
  contextDir: string,
): Promise<{ name: string | null; id: string } | null> {
  const history = historySchema.safeParse(await docker.getImage(imageId).history())
  if (!history.success) return null
  const ancestors = history.data.slice(1).filter((h) => h.Id.startsWith('sha256:'))

  const named = await dockerfileBase(contextDir)
  if (named) {
    const info = await docker
      .getImage(named)
      .inspect()
      .catch(() => null)
    if (info && (ancestors.some((h) => h.Id === info.Id) || history.data[0]?.Id === info.Id)) {
      return { name: named, id: info.Id }
    }
  }
  for (const entry of ancestors) {
    const tag = (entry.Tags ?? []).find((t) => t !== '<none>:<none>' && !OWN_IMAGE.test(t))
    if (tag) return { name: tag, id: entry.Id }
  }
  return null
}

/** The final stage's FROM image of `binder/Dockerfile`, `.binder/Dockerfile` or `Dockerfile`. */
async function dockerfileBase(contextDir: string): Promise<string | null> {
  for (const candidate of ['binder/Dockerfile', '.binder/Dockerfile', 'Dockerfile']) {
    let text: string
    try {
      text = await readFile(path.join(contextDir, candidate), 'utf8')
    } catch {
      continue
    }
    const stages = new Map<string, string>()
    let last: string | null = null
    for (const match of text.matchAll(/^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$/gim)) {
      const image = match[1] ?? ''
      const resolved = stages.get(image.toLowerCase()) ?? image
      if (match[2]) stages.set(match[2].toLowerCase(), resolved)
      last = resolved
    }
    return last && !last.includes('$') ? last : null
  }
  return null
}
