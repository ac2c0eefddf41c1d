import { InfrastructureError } from '../domain/errors.ts'

/**
 * A clone URL taken apart so credentials never reach disk or logs: git gets the URL without
 * them and an HTTP Authorization header through its environment, so `.git/config` in the
 * checkout (which is copied into the image) holds no secret.
 */
export interface CloneSource {
  /** The URL git is given: no user info for http(s). */
  readonly url: string
  /** `host/path`, safe for messages and logs. */
  readonly display: string
  /** The project's path on its server, without `.git` (`ml-course/alice-submission`). */
  readonly project: string
  readonly scheme: 'git' | 'http' | 'https' | 'ssh' | 'file'
  /** `hostname:port` with the scheme's default port filled in; '' for local paths. */
  readonly server: string
  /** `Basic …` when the URL carried a user and password; never logged. */
  readonly authorization: string | undefined
}

const DEFAULT_PORTS: Record<string, string> = { git: '9418', http: '80', https: '443', ssh: '22' }
const SCP_LIKE = /^(?:([^@/]+)@)?([^:/]+):(?!\/\/)(.+)$/

export function parseCloneUrl(raw: string): CloneSource {
  const url = toUrl(raw)
  if (!url)
    throw new InfrastructureError(`clone URL ${redact(raw)} is not a git URL proctor understands`)

  const scheme = url.protocol.slice(0, -1)
  if (!isScheme(scheme)) {
    throw new InfrastructureError(
      `clone URL ${redact(raw)} uses ${scheme}:, which proctor does not fetch from`,
    )
  }

  let authorization: string | undefined
  const isHttp = scheme === 'http' || scheme === 'https'
  if (url.password !== '' && !isHttp) {
    throw new InfrastructureError(
      `clone URL ${redact(raw)} carries a password, which only http(s) can use`,
    )
  }
  // A user alone can be a token too (`https://<token>@host/…`), so http(s) loses both.
  if (isHttp && (url.username !== '' || url.password !== '')) {
    const user = decodeURIComponent(url.username)
    const password = decodeURIComponent(url.password)
    authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
    url.username = ''
    url.password = ''
  }

  const project = url.pathname
    .replace(/^\/+/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '')
  return {
    // Git gets the URL as written (scp-like paths are relative to the user's home on the
    // server), unless credentials had to be taken out of it.
    url: authorization === undefined ? raw : url.href,
    display: scheme === 'file' ? url.pathname : `${url.host}${url.pathname}`,
    project: project === '' ? url.host : project,
    scheme,
    server: serverOf(url),
    authorization,
  }
}

/**
 * Whether a submodule URL (from `.gitmodules`) lives on the same server, over the same
 * scheme, as the project. Relative URLs resolve against the project's own URL, so they do.
 */
export function isSameServer(source: CloneSource, submoduleUrl: string): boolean {
  if (submoduleUrl.startsWith('./') || submoduleUrl.startsWith('../')) return true
  if (source.scheme === 'file') return false
  const url = toUrl(submoduleUrl)
  if (!url) return false
  return url.protocol === `${source.scheme}:` && serverOf(url) === source.server
}

/** The URL with any user info removed, for messages. */
export function redact(raw: string): string {
  return raw.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1')
}

function toUrl(raw: string): URL | undefined {
  // `-…` would be read as an option; `<helper>::<address>` runs a remote helper (ext::).
  if (raw.startsWith('-') || /^[A-Za-z][A-Za-z0-9+.-]*::/.test(raw)) return undefined
  if (raw.startsWith('/')) return new URL(`file://${raw}`)
  const scp = SCP_LIKE.exec(raw)
  if (scp && !raw.includes('://')) {
    const [, user, host, path] = scp
    return tryUrl(`ssh://${user ? `${user}@` : ''}${host}/${path?.replace(/^\/+/, '')}`)
  }
  return tryUrl(raw)
}

function tryUrl(value: string): URL | undefined {
  try {
    return new URL(value)
  } catch {
    return undefined
  }
}

function serverOf(url: URL): string {
  if (url.protocol === 'file:') return ''
  const scheme = url.protocol.slice(0, -1)
  return `${url.hostname.toLowerCase()}:${url.port || DEFAULT_PORTS[scheme] || ''}`
}

function isScheme(value: string): value is CloneSource['scheme'] {
  return ['git', 'http', 'https', 'ssh', 'file'].includes(value)
}
