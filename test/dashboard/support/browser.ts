import { mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import { chromium, type BrowserContext, type Page } from 'playwright-core'

import { TEST_ENV } from '../../support/env.ts'

/** Debian's chromium (scripts/setup.sh installs it); Playwright never downloads a browser. */
export const CHROMIUM = process.env.PROCTOR_CHROMIUM ?? '/usr/bin/chromium'
export const SCREENSHOTS = path.join(TEST_ENV.repoRoot, 'test-results/screenshots')

export interface Browser {
  readonly context: BrowserContext
  newPage(): Promise<Page>
  close(): Promise<void>
}

/**
 * A headless Chromium with a fresh profile, at the smallest screen the dashboard supports
 * (1366×768), with no network but the loopback proctor.
 */
export async function launchBrowser(): Promise<Browser> {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'proctor-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1366, height: 768 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  mkdirSync(SCREENSHOTS, { recursive: true })
  return {
    context,
    newPage: () => context.newPage(),
    async close() {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}

/** Signs in on the dashboard with a token, as an operator would: pasting it in the form. */
export async function signIn(
  page: Page,
  baseUrl: string,
  token: string,
  pathname = '/dashboard/',
): Promise<void> {
  await page.goto(`${baseUrl}${pathname}`)
  await page.getByLabel('API token').fill(token)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByText('Signed in as').waitFor()
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const file = path.join(SCREENSHOTS, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  return file
}
