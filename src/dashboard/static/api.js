// The API, called with the operator's token. The token lives in sessionStorage: it goes when
// the tab closes, and is never put in a URL.

const KEY = 'proctor.token'

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message)
    this.status = status
    this.code = code
  }
}

export function getToken() {
  return sessionStorage.getItem(KEY)
}

export function setToken(token) {
  sessionStorage.setItem(KEY, token)
}

export function clearToken() {
  sessionStorage.removeItem(KEY)
}

/** Called when the API says the token is no longer valid. */
let onUnauthorized = () => {}
export function whenUnauthorized(fn) {
  onUnauthorized = fn
}

export function authHeaders(extra = {}) {
  const token = getToken()
  return { ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra }
}

/**
 * Calls the API with the token. A 401 signs the tab out (`whenUnauthorized`), except for
 * `checkingToken` calls: the sign-in form tries a token and says itself what is wrong.
 */
export async function api(path, { method = 'GET', body, signal, checkingToken = false } = {}) {
  let response
  try {
    response = await fetch(path, {
      method,
      signal,
      headers: authHeaders(body === undefined ? {} : { 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch (err) {
    if (err.name === 'AbortError') throw err
    throw new ApiError(0, 'unreachable', 'proctor does not answer; is it running?')
  }
  const text = await response.text()
  let json = null
  try {
    json = text ? JSON.parse(text) : null
  } catch {
    json = null
  }
  if (response.status === 401) {
    if (!checkingToken) onUnauthorized()
    throw new ApiError(401, 'unauthorized', json?.message ?? 'sign in again')
  }
  if (!response.ok) {
    throw new ApiError(
      response.status,
      json?.error ?? 'error',
      json?.message ?? response.statusText,
    )
  }
  return json
}

/** Downloads an API file (an export) with the token, as the browser's own download. */
export async function download(path, filename) {
  const response = await fetch(path, { headers: authHeaders() })
  if (!response.ok) {
    const json = await response.json().catch(() => null)
    throw new ApiError(
      response.status,
      json?.error ?? 'error',
      json?.message ?? response.statusText,
    )
  }
  const url = URL.createObjectURL(await response.blob())
  const a = document.createElement('a')
  a.href = url
  a.download = filename
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}
