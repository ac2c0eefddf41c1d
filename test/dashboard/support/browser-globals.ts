/**
 * The few browser APIs the tests call inside `page.evaluate`, typed here: the project's
 * TypeScript has no DOM library (it is Node code), and adding it would type every file as if
 * it ran in a browser. Inside an evaluated function: `const w = globalThis as unknown as
 * BrowserGlobals`.
 */
export interface BrowserStyle {
  readonly color: string
  readonly backgroundColor: string
  readonly visibility: string
  readonly fontSize: string
  readonly fontWeight: string
  readonly outlineStyle: string
  readonly outlineWidth: string
}

export interface BrowserElement {
  readonly parentElement: BrowserElement | null
  readonly tagName: string
  readonly textContent: string | null
  readonly id: string
  closest(selector: string): BrowserElement | null
  getClientRects(): { readonly length: number }
  getAttribute(name: string): string | null
}

export interface BrowserGlobals {
  readonly document: {
    readonly body: unknown
    readonly activeElement: BrowserElement | null
    createTreeWalker(
      root: unknown,
      whatToShow: number,
    ): { nextNode(): { textContent: string | null; parentElement: BrowserElement | null } | null }
    getElementById(id: string): BrowserElement | null
  }
  readonly NodeFilter: { readonly SHOW_TEXT: number }
  readonly sessionStorage: { getItem(key: string): string | null }
  getComputedStyle(element: BrowserElement): BrowserStyle
  /** Set by a test to prove the page was not reloaded. */
  loadedOnce?: boolean
}
