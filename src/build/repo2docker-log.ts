/**
 * repo2docker's `--json-logs` output, one line at a time. Lines are normally
 * `{"message": "...", "phase": "building"}`; some have no phase ("Picked Local content
 * provider."), uncaught exceptions add `exc_info` (a traceback), and anything Python prints
 * outside its logger is plain text. Build output arrives in engine-sized chunks, so a message
 * is not always a whole line ("Step 1/3 : FROM x" and "\n" come separately).
 */
export interface Repo2DockerLogLine {
  /** Text for the build log; '' when the line carries nothing a reader needs. */
  readonly text: string
  readonly phase: string | null
  /** The buildpack named by a "Using <Name> builder" line. */
  readonly buildpack: string | null
  /** Python exception class of an uncaught error (`AttributeError`, `APIError`…). */
  readonly exception: string | null
  /** repo2docker could not talk to the engine at start. */
  readonly engineUnreachable: boolean
  readonly traceback: string | null
}

export function parseRepo2DockerLine(line: string): Repo2DockerLogLine {
  const json = parseJsonObject(line)
  if (!json || typeof json.message !== 'string') {
    return {
      text: line === '' ? '' : `${line}\n`,
      phase: null,
      buildpack: null,
      exception: null,
      engineUnreachable: false,
      traceback: null,
    }
  }

  const message = json.message
  const phase = typeof json.phase === 'string' ? json.phase : null
  const traceback = typeof json.exc_info === 'string' ? json.exc_info : null
  // The engine's final `{"aux": {"ID": …}}` event, re-logged as text: noise for a reader.
  const isAux = message.startsWith('{"aux"')
  const failed = phase === 'failed' && !message.endsWith('\n')
  return {
    text: isAux ? '' : failed ? `${message}\n` : message,
    phase,
    buildpack: /^Using (\w+) builder/.exec(message)?.[1] ?? null,
    exception: traceback ? exceptionName(traceback) : null,
    engineUnreachable: /Container engine initialization error/.test(message),
    traceback,
  }
}

/** The class name on a traceback's last line: `docker.errors.APIError: 500 …` → `APIError`. */
function exceptionName(traceback: string): string | null {
  const last = traceback.trimEnd().split('\n').at(-1) ?? ''
  const name = /^([A-Za-z_][\w.]*)(?::|$)/.exec(last)?.[1]
  return name ? (name.split('.').at(-1) ?? null) : null
}

function parseJsonObject(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    const value: unknown = JSON.parse(line)
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}
