// A small stacked bar chart of finished submissions per hour: scored, then failures by code.
// The same numbers are in a table beside it, for screen readers and for exact values.

import { h, svg } from './dom.js'

export const SCORED_COLOR = '#1a7f37'
// Distinct hues, each at least 3:1 against white (WCAG non-text contrast).
const FAILURE_COLORS = ['#cf222e', '#8250df', '#bc4c00', '#0969da', '#6e7781', '#9a6700', '#bf3989']

export function colorsFor(codes) {
  return new Map(codes.map((code, i) => [code, FAILURE_COLORS[i % FAILURE_COLORS.length]]))
}

/** hours: [{ hour: '2026-01-01T10', scored, failures: { code: n } }] */
export function hourlyChart(hours, { title }) {
  const codes = [...new Set(hours.flatMap((x) => Object.keys(x.failures)))].sort()
  const colors = colorsFor(codes)
  const totals = hours.map((x) => x.scored + Object.values(x.failures).reduce((a, b) => a + b, 0))
  const max = Math.max(1, ...totals)
  const width = 360
  const height = 120
  const left = 28
  const bottom = 18
  const plotH = height - bottom - 6
  const slot = (width - left) / Math.max(1, hours.length)
  const barW = Math.max(3, slot * 0.7)
  const y = (n) => 6 + plotH - (n / max) * plotH
  const sum = totals.reduce((a, b) => a + b, 0)
  const scored = hours.reduce((a, x) => a + x.scored, 0)

  const bars = hours.flatMap((x, i) => {
    const segments = [
      ['scored', x.scored, SCORED_COLOR],
      ...codes.map((c) => [c, x.failures[c] ?? 0, colors.get(c)]),
    ]
    let base = 0
    const x0 = left + i * slot + (slot - barW) / 2
    return segments
      .filter(([, n]) => n > 0)
      .map(([label, n, color]) => {
        const rect = svg(
          'rect',
          {
            x: x0.toFixed(1),
            y: y(base + n).toFixed(1),
            width: barW.toFixed(1),
            height: (y(base) - y(base + n)).toFixed(1),
            fill: color,
          },
          svg('title', {}, `${hourLabel(x.hour)}: ${n} ${label}`),
        )
        base += n
        return rect
      })
  })
  const ticks = hours
    .map((x, i) => [x, i])
    .filter(([, i]) => (hours.length - 1 - i) % 3 === 0)
    .map(([x, i]) => {
      // The last label ends at its bar, so it never runs off the chart's right edge.
      const last = i === hours.length - 1
      const at = left + i * slot + (last ? slot : slot / 2)
      return svg(
        'text',
        { x: at.toFixed(1), y: height - 4, 'text-anchor': last ? 'end' : 'middle', class: 'tick' },
        hourLabel(x.hour),
      )
    })

  const chart = svg(
    'svg',
    {
      viewBox: `0 0 ${width} ${height}`,
      class: 'chart',
      role: 'img',
      'aria-label': `${title}: ${sum} finished in ${hours.length} hours, ${scored} scored, ${sum - scored} failed.`,
    },
    svg('line', { x1: left, y1: y(0), x2: width, y2: y(0), class: 'axis' }),
    svg('text', { x: left - 4, y: y(max) + 4, 'text-anchor': 'end', class: 'tick' }, String(max)),
    svg('text', { x: left - 4, y: y(0), 'text-anchor': 'end', class: 'tick' }, '0'),
    bars,
    ticks,
  )

  const legend = h(
    'ul',
    { class: 'legend', 'aria-label': 'Legend' },
    [['scored', SCORED_COLOR], ...codes.map((c) => [c, colors.get(c)])].map(([label, color]) =>
      h(
        'li',
        {},
        svg(
          'svg',
          { width: 12, height: 12, 'aria-hidden': 'true' },
          svg('rect', { width: 12, height: 12, fill: color }),
        ),
        ' ',
        label,
      ),
    ),
  )
  return { chart, legend, codes }
}

/** The local hour of a UTC hour key, `14:00`. */
export function hourLabel(hourKey) {
  const date = new Date(`${hourKey}:00:00Z`)
  return date.toLocaleTimeString(undefined, {
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  })
}
