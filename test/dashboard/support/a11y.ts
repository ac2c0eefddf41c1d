import type { Page } from 'playwright-core'

import type { BrowserElement, BrowserGlobals } from './browser-globals.ts'

export interface ContrastFailure {
  readonly text: string
  readonly ratio: number
  readonly required: number
  readonly color: string
  readonly background: string
}

/**
 * WCAG 2.1 AA contrast of every visible text on the page: 4.5:1, or 3:1 for large text
 * (24 px, or 18.66 px bold). The background is the nearest ancestor's opaque one, with
 * translucent layers blended over white. Disabled controls are exempt, as WCAG says.
 */
export function contrastFailures(page: Page): Promise<ContrastFailure[]> {
  return page.evaluate(() => {
    const w = globalThis as unknown as BrowserGlobals
    function parse(color: string): [number, number, number, number] {
      const m = /rgba?\(([^)]+)\)/.exec(color)
      if (!m?.[1]) return [0, 0, 0, 1]
      const parts = m[1]
        .split(/[ ,/]+/)
        .filter(Boolean)
        .map(Number)
      return [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0, parts[3] ?? 1]
    }
    function luminance([r, g, b]: number[]): number {
      const channel = (v: number) => {
        const s = v / 255
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4
      }
      return 0.2126 * channel(r ?? 0) + 0.7152 * channel(g ?? 0) + 0.0722 * channel(b ?? 0)
    }
    function background(el: BrowserElement | null): [number, number, number] {
      const layers: [number, number, number, number][] = []
      for (let node = el; node; node = node.parentElement) {
        const bg = parse(w.getComputedStyle(node).backgroundColor)
        if (bg[3] > 0) layers.push(bg)
        if (bg[3] >= 1) break
      }
      let result: [number, number, number] = [255, 255, 255]
      for (const [r, g, b, a] of layers.reverse()) {
        result = [
          r * a + result[0] * (1 - a),
          g * a + result[1] * (1 - a),
          b * a + result[2] * (1 - a),
        ]
      }
      return result
    }

    const failures: {
      text: string
      ratio: number
      required: number
      color: string
      background: string
    }[] = []
    const walker = w.document.createTreeWalker(w.document.body, w.NodeFilter.SHOW_TEXT)
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const text = node.textContent?.trim()
      const el = node.parentElement
      if (!text || !el || el.closest('svg, .visually-hidden, [hidden]')) continue
      const style = w.getComputedStyle(el)
      if (style.visibility !== 'visible' || el.getClientRects().length === 0) continue
      if (el.closest('button:disabled, [aria-disabled="true"], :disabled')) continue
      const fg = parse(style.color)
      const bg = background(el)
      const [l1, l2] = [luminance(fg), luminance(bg)].sort((a, b) => b - a)
      const ratio = ((l1 ?? 0) + 0.05) / ((l2 ?? 0) + 0.05)
      const size = parseFloat(style.fontSize)
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700)
      const required = large ? 3 : 4.5
      if (ratio < required) {
        failures.push({
          text: text.slice(0, 60),
          ratio: Math.round(ratio * 100) / 100,
          required,
          color: style.color,
          background: `rgb(${bg.map(Math.round).join(', ')})`,
        })
      }
    }
    return failures
  })
}

/** The focused element's outline: a visible focus indicator has a width and a style. */
export function focusOutline(page: Page): Promise<{ tag: string; text: string; outline: string }> {
  return page.evaluate(() => {
    const w = globalThis as unknown as BrowserGlobals
    const el = w.document.activeElement
    const style = el ? w.getComputedStyle(el) : null
    return {
      tag: el?.tagName.toLowerCase() ?? '',
      text: el?.textContent?.trim().slice(0, 40) ?? '',
      outline: style ? `${style.outlineStyle} ${style.outlineWidth}` : '',
    }
  })
}
