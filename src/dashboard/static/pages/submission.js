// One submission, live: its timeline arrives through the event stream (no reload), and each
// state or stage change refreshes its details, stages and actions.

import { actionsPanel } from '../actions.js'
import { api } from '../api.js'
import {
  announce,
  facts,
  formatDuration,
  formatScore,
  h,
  link,
  replace,
  stateBadge,
  table,
  TERMINAL,
  timeEl,
} from '../dom.js'
import { follow } from '../sse.js'

export function submissionPage({ main, params, me, signal }) {
  const id = Number(params[0])
  document.title = `Submission #${id} · proctor`

  const timeline = []
  const logs = new Map()
  let detail = null
  let ready = false

  const stateLine = h('p', { class: 'state-line', id: 'state-line' })
  const live = h('span', { class: 'live', role: 'status', id: 'live-status' }, 'Connecting…')
  const details = h('div')
  const stages = h('div')
  const timelineBody = h('div')
  const logsBody = h('div')
  const actions = actionsPanel(id, { onDone: () => void loadDetail() })
  const subtitle = h('p', { class: 'subtitle' })

  replace(
    main,
    h('div', { class: 'page-head' }, h('h1', {}, `Submission #${id}`), live),
    subtitle,
    stateLine,
    h(
      'div',
      { class: 'columns' },
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'details-heading' },
        h('h2', { id: 'details-heading' }, 'Details'),
        details,
      ),
      h(
        'div',
        { class: 'stack' },
        actions.element,
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'stages-heading' },
          h('h2', { id: 'stages-heading' }, 'Stages'),
          stages,
        ),
      ),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'timeline-heading' },
      h('h2', { id: 'timeline-heading' }, 'Timeline'),
      timelineBody,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'logs-heading' },
      h('h2', { id: 'logs-heading' }, 'Logs'),
      logsBody,
    ),
  )
  actions.update(null, false)

  async function loadDetail() {
    try {
      detail = await api(`/api/submissions/${id}`, { signal })
    } catch (err) {
      if (err.name === 'AbortError' || err.status === 401) return
      replace(
        details,
        h(
          'p',
          { class: 'error', role: 'alert' },
          err.status === 404 ? `There is no submission #${id}.` : err.message,
        ),
      )
      return
    }
    renderDetail()
  }

  let pending
  function refreshSoon() {
    clearTimeout(pending)
    pending = setTimeout(() => void loadDetail(), 200)
  }

  function renderDetail() {
    const s = detail
    replace(
      subtitle,
      `${s.project.path} · tag `,
      h('code', {}, s.tag),
      ` · challenge ${s.challengeId ?? '–'}`,
    )
    replace(stateLine, stateBadge(s.state), ' ', h('span', { id: 'status-detail' }, s.statusDetail))
    replace(
      details,
      facts([
        ['Score', h('span', { id: 'score', class: 'score' }, formatScore(s.score))],
        s.scoreSecondary !== null ? ['Secondary score', formatScore(s.scoreSecondary)] : null,
        s.reason
          ? [
              'Failure reason',
              h(
                'span',
                { id: 'failure-reason' },
                h('code', {}, s.reason.code),
                ' ',
                s.reason.message ?? '',
              ),
            ]
          : null,
        [
          'Challenge',
          s.challengeId
            ? link(
                `/dashboard/challenges/${encodeURIComponent(s.challengeId)}/leaderboard`,
                s.challengeId,
              )
            : '–',
        ],
        ['Pushed by', s.pusher ?? '–'],
        ['Commit', h('code', { class: 'wrap' }, s.commit)],
        [
          'Image',
          s.image.reference
            ? h('code', { class: 'wrap', id: 'image-ref' }, s.image.reference)
            : 'not built yet',
        ],
        s.image.digest ? ['Digest', h('code', { class: 'wrap' }, s.image.digest)] : null,
        [
          'Archive',
          `${s.image.archive}${s.image.archiveError ? `: ${s.image.archiveError}` : ''}${s.image.reusedFrom ? ` (reused from #${s.image.reusedFrom})` : ''}`,
        ],
        s.image.builder ? ['Builder', `${s.image.builder} ${s.image.builderVersion ?? ''}`] : null,
        ['Attempt', String(s.attempt)],
        s.job
          ? [
              'Job',
              `${s.job.id} in ${s.job.queue}: ${s.job.state}${s.job.heldBy ? ` on ${s.job.heldBy}` : ''}`,
            ]
          : null,
        ['Received', timeEl(s.createdAt)],
      ]),
    )
    renderStages()
    actions.update(s.state, me.scope === 'operator' || me.scope === 'organizer')
  }

  function renderStages() {
    if (!detail) return
    replace(
      stages,
      detail.evaluations.length === 0
        ? h('p', { class: 'muted' }, 'No evaluation yet.')
        : detail.evaluations.map((e) =>
            table({
              caption: `Evaluation ${e.number} (${e.kind}): ${e.state}${e.score !== null ? `, score ${formatScore(e.score)}` : ''}`,
              columns: ['Stage', 'Took', 'Outcome', 'Peak memory'],
              rows: e.stages.map((st) => [
                st.stage,
                st.wallMs !== null ? formatDuration(st.wallMs) : ticking(st.startedAt),
                st.outcome ?? 'running',
                st.peakMemoryBytes ? `${(st.peakMemoryBytes / 1024 / 1024).toFixed(1)} MiB` : '–',
              ]),
              empty: 'No stage has started.',
            }),
          ),
    )
  }

  function renderTimeline() {
    const ended = TERMINAL.includes(timeline.filter((e) => e.kind === 'state').at(-1)?.state)
    replace(
      timelineBody,
      table({
        className: 'timeline',
        columns: ['When', 'What', 'Lasted', 'Message', 'By'],
        rows: timeline.map((e, i) => {
          const next = timeline[i + 1]
          const lasted = next
            ? formatDuration(Date.parse(next.at) - Date.parse(e.at))
            : ended
              ? ''
              : ticking(e.at)
          return [
            timeEl(e.at, { withDate: false }),
            e.kind === 'state'
              ? stateBadge(e.state)
              : h(
                  'span',
                  { class: `kind kind-${e.kind}` },
                  e.stage ? `${e.kind}: ${e.stage}` : e.kind,
                ),
            lasted,
            e.message,
            h('span', { class: 'actor' }, e.actor),
          ]
        }),
        empty: 'Nothing recorded yet.',
      }),
    )
  }

  function renderLogs() {
    if (logs.size === 0) {
      replace(
        logsBody,
        h(
          'p',
          { class: 'muted' },
          'No log stored yet: each stage’s log arrives when the stage ends.',
        ),
      )
      return
    }
    const open = new Set([...logsBody.querySelectorAll('details[open]')].map((d) => d.dataset.key))
    replace(
      logsBody,
      [...logs.values()].map((l) =>
        h(
          'details',
          { 'data-key': `log-${l.id}`, open: open.has(`log-${l.id}`) },
          h(
            'summary',
            {},
            `${l.stage} (evaluation ${l.evaluationId}) · ${(l.bytesTotal / 1024).toFixed(1)} KiB${l.bytesElided ? `, ${(l.bytesElided / 1024).toFixed(1)} KiB elided` : ''}`,
          ),
          h(
            'pre',
            { class: 'log', tabindex: '0', 'aria-label': `${l.stage} log` },
            l.text || '(empty)',
          ),
        ),
      ),
    )
  }

  follow(`/api/submissions/${id}/events`, {
    signal,
    onStatus: (status, detailText) => {
      live.className = `live live-${status}`
      live.textContent = {
        connecting: 'Connecting…',
        live: '● Live',
        reconnecting: 'Reconnecting…',
        closed: `Not live: ${detailText ?? ''}`,
      }[status]
    },
    onReady: () => {
      ready = true
      renderTimeline()
      renderLogs()
    },
    onEvent: ({ event, data }) => {
      if (event === 'log') {
        logs.set(data.id, data)
        if (ready) renderLogs()
        return
      }
      timeline.push(data)
      if (!ready) return
      renderTimeline()
      if (event === 'state') announce(`Submission ${id} is now ${data.state}`)
      refreshSoon()
    },
  })

  // Durations of what is still running grow every second, in place (a re-render would drop
  // the reader's text selection).
  const tick = setInterval(() => {
    for (const el of main.querySelectorAll('.ticking')) el.textContent = sinceText(el.dataset.since)
  }, 1000)
  signal.addEventListener('abort', () => clearInterval(tick))

  void loadDetail()
  renderLogs()
}

function ticking(since) {
  return h('span', { class: 'ticking', 'data-since': since }, sinceText(since))
}

function sinceText(since) {
  return `${formatDuration(Date.now() - Date.parse(since))} so far`
}
