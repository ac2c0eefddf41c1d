import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createProject } from '../support/git-server.ts'
import {
  API_TOKEN,
  gitlabTagPush,
  startProctor,
  type Harness,
  type SubmissionBody,
} from '../support/proctor-harness.ts'
import { assertServicesUp } from '../support/services.ts'
import { parseExposition, valueOf } from '../metrics/support/exposition.ts'
import { contrastFailures, focusOutline } from './support/a11y.ts'
import type { BrowserGlobals } from './support/browser-globals.ts'
import { launchBrowser, screenshot, signIn, type Browser } from './support/browser.ts'

const suffix = Date.now().toString(36)
let proctor: Harness
let browser: Browser
let page: Page
/** The scored iris submission and the digits one that waits (its queue has no worker). */
let scored: SubmissionBody
let waiting: number

/** Pushes a participant's project and its tag as GitLab would, and returns the submission id. */
async function pushSubmission(
  challenge: 'iris' | 'digits',
  projectId: number,
  slow = false,
): Promise<number> {
  const projectPath = `dash-${suffix}/${challenge}`
  const project = await createProject(projectPath, `examples/participants/${challenge}`, {
    author: { name: 'alice', email: 'alice@example.test' },
  })
  if (slow) {
    // A few seconds of predicting, so the page is open before the submission ends.
    await project.commit(
      {
        'run.sh': {
          content:
            '#!/bin/sh\nset -eu\nsleep 4\nexec python3 predict.py "$PROCTOR_INPUT/test.csv" "$PROCTOR_OUTPUT/predictions.csv"\n',
          executable: true,
        },
      },
      'predict slowly',
    )
  }
  const push = await project.pushTag('v1', { annotated: true })
  const hook = await proctor.postGitlabHook(
    gitlabTagPush({
      projectId,
      projectPath,
      tag: 'v1',
      after: push.after,
      checkoutSha: push.commitSha,
    }),
  )
  expect(hook.status).toBe(202)
  return proctor.waitForEventSubmission(hook.body.eventId as number)
}

/** The states shown in the timeline table, in order. */
function timelineStates(): Promise<string[]> {
  return page.locator('table.timeline .badge').allTextContents()
}

beforeAll(async () => {
  await assertServicesUp()
  // The worker serves intake and iris only: digits submissions wait in their queue.
  proctor = await startProctor({
    worker: {
      slots: 1,
      queues: ['intake', 'iris'],
      capabilities: [],
      leaseSeconds: 30,
      maxAttempts: 3,
    },
  })
  browser = await launchBrowser()
  page = await browser.newPage()
})

afterAll(async () => {
  await browser?.close()
  await proctor?.close()
})

describe('the dashboard', () => {
  it('asks for a token, refuses a wrong one, and keeps the right one for the tab', async () => {
    await page.goto(`${proctor.address}/`)
    expect(new URL(page.url()).pathname).toBe('/dashboard/')
    await page.getByLabel('API token').fill('not-the-token-0000000')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await expect(page.getByRole('alert').textContent()).resolves.toBe('That token is not valid.')
    await screenshot(page, 'sign-in')

    await signIn(page, proctor.address, API_TOKEN)
    await expect(
      page.evaluate(() =>
        (globalThis as unknown as BrowserGlobals).sessionStorage.getItem('proctor.token'),
      ),
    ).resolves.toBe(API_TOKEN)
    await page.reload()
    await page.getByText('Signed in as').waitFor()
  })

  it('follows a submission live: each state appears without a reload, then the score', async () => {
    const id = await pushSubmission('iris', 8101, true)
    await page.goto(`${proctor.address}/dashboard/submissions/${id}`)
    await page.getByText('● Live').waitFor()
    await page.evaluate(() => Object.assign(globalThis, { loadedOnce: true }))
    const first = await timelineStates()
    expect(first).not.toContain('scored')

    for (const state of ['queued', 'building', 'evaluating', 'scored']) {
      await page.locator('table.timeline .badge', { hasText: state }).waitFor({ timeout: 180_000 })
    }
    expect(await timelineStates()).toEqual([
      'received',
      'queued',
      'building',
      'evaluating',
      'scored',
    ])
    await expect(
      page.evaluate(() => (globalThis as unknown as BrowserGlobals).loadedOnce),
    ).resolves.toBe(true)

    scored = await proctor.waitForSubmission(id)
    expect(scored.state).toBe('scored')
    await page.locator('#score', { hasText: String(scored.score) }).waitFor()
    await page.locator('#image-ref', { hasText: '@sha256:' }).waitFor()
    const stages = await page
      .locator('section[aria-labelledby="stages-heading"] tbody tr td:first-child')
      .allTextContents()
    expect(stages).toEqual(['fetch', 'build', 'push', 'predict', 'score'])
    await page.getByText('build (evaluation', { exact: false }).waitFor()
    await screenshot(page, 'submission-scored')

    // The same run, as Prometheus sees it.
    const metrics = await fetch(`${proctor.address}/metrics`, {
      headers: { authorization: `Bearer ${API_TOKEN}` },
    })
    const { samples } = parseExposition(await metrics.text())
    expect(valueOf(samples, 'proctor_archive_bytes')).toBeGreaterThan(1_000_000)
    expect(valueOf(samples, 'proctor_submissions', { challenge: 'iris', state: 'scored' })).toBe(1)
    const builds = { challenge: 'iris', stage: 'build', outcome: 'ok' }
    expect(valueOf(samples, 'proctor_stage_duration_seconds_count', builds)).toBe(1)
  })

  it('cancels a waiting submission after a confirmation, and the timeline says who', async () => {
    waiting = await pushSubmission('digits', 8102)
    await proctor.waitForSubmission(waiting, { states: ['queued'], timeoutMs: 60_000 })
    await page.goto(`${proctor.address}/dashboard/submissions/${waiting}`)
    await page.getByText('● Live').waitFor()
    await page.evaluate(() => Object.assign(globalThis, { loadedOnce: true }))

    await page.getByRole('button', { name: 'Cancel…' }).click()
    const dialog = page.getByRole('dialog', { name: `Cancel submission #${waiting}?` })
    await dialog.waitFor()
    await dialog.getByRole('button', { name: 'Cancel submission' }).click()
    await dialog.getByText('Give a reason: it goes on the timeline.').waitFor()
    await dialog.getByLabel('Reason').fill('pushed to the wrong challenge')
    await screenshot(page, 'cancel-dialog')
    await dialog.getByRole('button', { name: 'Cancel submission' }).click()
    await dialog.waitFor({ state: 'detached' })

    await page.locator('table.timeline .badge', { hasText: 'cancelled' }).waitFor()
    const row = page.locator('table.timeline tr', { hasText: 'pushed to the wrong challenge' })
    await expect(row.locator('.actor').textContent()).resolves.toBe('operator:test')
    await page.getByText('Cancelled (was queued; quota unit refunded).').waitFor()
    await expect(page.getByRole('button', { name: 'Cancel…' }).isDisabled()).resolves.toBe(true)
    await expect(
      page.evaluate(() => (globalThis as unknown as BrowserGlobals).loadedOnce),
    ).resolves.toBe(true)
    const { body } = await proctor.api<SubmissionBody>(`/api/submissions/${waiting}`)
    expect(body.state).toBe('cancelled')
  })

  it('re-queues with a reason; re-run is shown disabled with why', async () => {
    await page.getByRole('button', { name: 'Re-queue…' }).click()
    const dialog = page.getByRole('dialog', { name: `Re-queue submission #${waiting}?` })
    await dialog.getByLabel('Reason').fill('the challenge was right after all')
    await dialog.getByRole('button', { name: 'Re-queue' }).click()
    await page.locator('table.timeline tbody tr:last-child .badge', { hasText: 'queued' }).waitFor()
    expect((await timelineStates()).slice(-2)).toEqual(['cancelled', 'queued'])
    await page.locator('#state-line .badge', { hasText: 'queued' }).waitFor()

    const rerun = page.getByRole('button', { name: 'Re-run' })
    await expect(rerun.getAttribute('aria-disabled')).resolves.toBe('true')
    await rerun.focus()
    await expect(page.getByRole('tooltip').isVisible()).resolves.toBe(true)
    await expect(rerun.getAttribute('aria-describedby')).resolves.toBe('rerun-tip')
    await expect(page.locator('#rerun-tip').textContent()).resolves.toMatch(/^Re-run comes later/)
  })

  it('shows challenges: queue depth, the oldest waiting job, alerts and finished work per hour', async () => {
    // A worker that stopped answering: the alert shows on the page.
    const at = new Date(Date.now() - 3_600_000).toISOString()
    await proctor.app.ctx.store.db
      .insertInto('workers')
      .values({
        id: 'gpu-host-1-4242',
        host: 'gpu-host-1',
        queues_json: '["digits"]',
        capabilities_json: '["gpu"]',
        slots: 2,
        state: 'alive',
        started_at: at,
        heartbeat_at: at,
      })
      .execute()
    await page.goto(`${proctor.address}/dashboard/`)
    const digits = page.getByRole('region', { name: /Handwritten digits/ })
    await digits.waitFor()
    await expect(digits.locator('dt:text-is("Waiting") + dd').textContent()).resolves.toBe('1')
    await expect(
      digits.locator('dt:text-is("Oldest waiting") + dd').textContent(),
    ).resolves.toMatch(/^\d+ (s|min) \(since /)
    const iris = page.getByRole('region', { name: /Iris species/ })
    await expect(iris.getByRole('img').getAttribute('aria-label')).resolves.toMatch(
      /1 finished in 13 hours, 1 scored, 0 failed/,
    )
    await page
      .getByRole('region', { name: /Needs attention/ })
      .getByText('worker gpu-host-1-4242 on gpu-host-1')
      .waitFor()
    await screenshot(page, 'challenges')
  })

  it('lists submissions, the leaderboard and the workers', async () => {
    await page.goto(`${proctor.address}/dashboard/submissions`)
    await page.getByRole('link', { name: `#${scored.id}` }).waitFor()
    await screenshot(page, 'submissions')

    await page.goto(`${proctor.address}/dashboard/challenges/iris/leaderboard`)
    const row = page.locator('tbody tr', { hasText: `#${scored.id}` })
    await row.waitFor()
    await expect(row.locator('td').nth(2).textContent()).resolves.toBe(String(scored.score))
    await screenshot(page, 'leaderboard')

    await page.goto(`${proctor.address}/dashboard/workers`)
    const worker = proctor.app.worker?.id ?? ''
    await page.locator('tbody tr', { hasText: worker }).getByText('alive').waitFor()
    await page
      .locator('tbody tr', { hasText: 'gpu-host-1-4242' })
      .getByText(/^silent/)
      .waitFor()
    await screenshot(page, 'workers')
  })

  it('is usable from the keyboard: a skip link first, then a visible focus on each control', async () => {
    await page.goto(`${proctor.address}/dashboard/submissions/${waiting}`)
    await page.getByText('● Live').waitFor()
    await page.keyboard.press('Tab')
    expect(await focusOutline(page)).toEqual({
      tag: 'a',
      text: 'Skip to content',
      outline: 'solid 3px',
    })
    await page.keyboard.press('Enter')
    await expect(
      page.evaluate(() => (globalThis as unknown as BrowserGlobals).document.activeElement?.id),
    ).resolves.toBe('main')
    for (let i = 0; i < 3; i++) await page.keyboard.press('Tab')
    const focused = await focusOutline(page)
    expect(focused.outline).toBe('solid 3px')
    expect(['a', 'button']).toContain(focused.tag)
  })

  it('meets WCAG AA contrast on every page', async () => {
    const pages = [
      '/dashboard/',
      `/dashboard/submissions/${scored.id}`,
      `/dashboard/submissions/${waiting}`,
      '/dashboard/submissions',
      '/dashboard/challenges/iris/leaderboard',
      '/dashboard/workers',
    ]
    for (const path of pages) {
      await page.goto(`${proctor.address}${path}`)
      await page.locator('main h1').waitFor()
      await page.locator('main table, main .muted').first().waitFor()
      // The pages render what they load a moment later; no fixed state to wait for on each.
      await page.waitForTimeout(500)
      expect({ path, failures: await contrastFailures(page) }).toEqual({ path, failures: [] })
    }
  })
})
