import type Docker from 'dockerode'

import { errorMessage, InfrastructureError } from '../domain/errors.ts'

/**
 * Makes sure an archived image (`registry/name@sha256:…`) is on this worker's engine,
 * pulling it from the registry when it is not. Like a push, a pull answers HTTP 200 and
 * reports failures inside its progress stream, so every event is read.
 */
export async function ensureImage(docker: Docker, reference: string, signal?: AbortSignal): Promise<'present' | 'pulled'> {
  try {
    await docker.getImage(reference).inspect()
    return 'present'
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) {
      throw new InfrastructureError(`cannot inspect ${reference}: ${errorMessage(err)}`, { cause: err })
    }
  }

  let stream: NodeJS.ReadableStream
  try {
    stream = await docker.pull(reference, { abortSignal: signal })
  } catch (err) {
    throw new InfrastructureError(`cannot pull ${reference} from the archive: ${errorMessage(err)}`, { cause: err })
  }
  const failure = await new Promise<string | null>((resolve) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => resolve(err ? errorMessage(err) : null),
      (event: { error?: string; errorDetail?: { message?: string } }) => {
        const message = event.errorDetail?.message ?? event.error
        if (message) resolve(message)
      },
    )
  })
  if (failure) throw new InfrastructureError(`pulling ${reference} from the archive failed: ${failure}`)
  return 'pulled'
}
