// Pages that poll: re-render without losing the reader's place. Focus and open <details>
// are found again by their `data-key` (or id) after each render.

import { h, replace } from './dom.js'

export function renderKeepingPlace(container, build) {
  const active = document.activeElement
  const focusKey = active && container.contains(active) ? keyOf(active) : null
  const open = new Set([...container.querySelectorAll('details[open]')].map(keyOf).filter(Boolean))
  const scroll = window.scrollY

  replace(container, build())

  for (const details of container.querySelectorAll('details')) {
    if (open.has(keyOf(details))) details.open = true
  }
  if (focusKey) {
    const again = [...container.querySelectorAll('[data-key], [id]')].find(
      (el) => keyOf(el) === focusKey,
    )
    again?.focus({ preventScroll: true })
  }
  window.scrollTo({ top: scroll })
}

function keyOf(el) {
  return el.dataset?.key ?? (el.id || null)
}

/**
 * Loads and renders now, then every `everyMs` while the tab is visible, until `signal`
 * aborts. A failed load keeps the last render and shows the error above it.
 */
export function keepFresh(container, { everyMs, signal, load, render }) {
  const status = h('p', { class: 'error', role: 'alert', hidden: true })
  const body = h('div')
  replace(container, status, body)
  let timer

  async function tick() {
    clearTimeout(timer)
    if (signal.aborted) return
    try {
      const data = await load()
      if (signal.aborted) return
      status.hidden = true
      renderKeepingPlace(body, () => render(data))
    } catch (err) {
      if (signal.aborted || err.name === 'AbortError' || err.status === 401) return
      status.hidden = false
      status.textContent = `Could not refresh: ${err.message}`
    }
    timer = setTimeout(tick, everyMs)
  }

  const onVisible = () => {
    if (!document.hidden) void tick()
  }
  document.addEventListener('visibilitychange', onVisible)
  signal.addEventListener('abort', () => {
    clearTimeout(timer)
    document.removeEventListener('visibilitychange', onVisible)
  })
  void tick()
  return { refresh: tick }
}
