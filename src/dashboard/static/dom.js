// Building DOM without innerHTML: every value from the API becomes a text node, so a tag name
// or a log line can never become markup.

const SVG_NS = 'http://www.w3.org/2000/svg'

/**
 * h('a', { href: '/x', class: 'link', onclick: fn }, 'text', child, [more])
 * Attributes: `class`, `on<event>` (a function), booleans (true sets, false omits), strings.
 */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children)
}

export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children)
}

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue
    if (name.startsWith('on') && typeof value === 'function')
      el.addEventListener(name.slice(2), value)
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  append(el, children)
  return el
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    if (Array.isArray(child)) append(el, child)
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren()
  append(el, children)
}

/** Says something to screen readers without moving focus. */
export function announce(text) {
  const region = document.getElementById('announcer')
  if (!region) return
  region.textContent = ''
  setTimeout(() => (region.textContent = text), 50)
}

export const TERMINAL = ['scored', 'failed', 'rejected', 'cancelled']

export function stateBadge(state) {
  return h('span', { class: `badge state-${state ?? 'unknown'}` }, state ?? 'unknown')
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–'
  if (ms < 1000) return `${Math.round(ms)} ms`
  const seconds = ms / 1000
  if (seconds < 60) return `${seconds.toFixed(1)} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`
}

/** `3 min ago`, from an ISO time. */
export function formatAge(iso, now = Date.now()) {
  if (!iso) return '–'
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (seconds < 60) return `${seconds} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${hours} h ${minutes % 60} min`
  return `${Math.floor(hours / 24)} d ${hours % 24} h`
}

/** A local date and time an operator reads at a glance, in a <time> element. */
export function timeEl(iso, { withDate = true } = {}) {
  if (!iso) return '–'
  const date = new Date(iso)
  const text = withDate
    ? date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' })
    : date.toLocaleTimeString()
  return h('time', { datetime: iso, title: date.toISOString() }, text)
}

export function formatScore(score) {
  if (score === null || score === undefined) return '–'
  return Number.isInteger(score)
    ? String(score)
    : score.toFixed(4).replace(/0+$/, '').replace(/\.$/, '')
}

/** A definition list from [term, value] pairs; values may be nodes. */
export function facts(pairs) {
  return h(
    'dl',
    { class: 'facts' },
    pairs.filter(Boolean).map(([term, value]) => [h('dt', {}, term), h('dd', {}, value ?? '–')]),
  )
}

/** A table with a caption, column headers and rows of cells (nodes or text). */
export function table({ caption, columns, rows, empty = 'Nothing to show.', className = '' }) {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty)
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: className },
      caption ? h('caption', {}, caption) : null,
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          columns.map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      h(
        'tbody',
        {},
        rows.map((cells) =>
          h(
            'tr',
            {},
            cells.map((c) => h('td', {}, c ?? '–')),
          ),
        ),
      ),
    ),
  )
}

export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs }, text)
}

export function submissionLink(id) {
  return id === null || id === undefined ? '–' : link(`/dashboard/submissions/${id}`, `#${id}`)
}
