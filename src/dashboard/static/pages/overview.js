// Challenges: queue depth, the oldest waiting job, running jobs and their workers, and what
// finished in the last hours; plus every alert condition that holds now.

import { api, ApiError, download } from '../api.js'
import { hourlyChart, hourLabel } from '../chart.js'
import { facts, formatAge, h, link, stateBadge, submissionLink, table, timeEl } from '../dom.js'
import { keepFresh } from '../refresh.js'

const STATES = [
  'received',
  'queued',
  'building',
  'evaluating',
  'scored',
  'failed',
  'rejected',
  'cancelled',
]

export function overviewPage({ main, signal }) {
  document.title = 'Challenges · proctor'
  const heading = h('h1', {}, 'Challenges')
  const body = h('div')
  main.replaceChildren(heading, body)

  keepFresh(body, {
    everyMs: 5000,
    signal,
    load: async () => {
      const [overview, alerts] = await Promise.all([
        api('/api/overview?hours=12', { signal }),
        api('/api/alerts', { signal }).catch((err) => {
          if (err instanceof ApiError && err.status === 403) return null
          throw err
        }),
      ])
      return { overview, alerts }
    },
    render: ({ overview, alerts }) => [
      alertsSection(alerts),
      h(
        'p',
        { class: 'intake' },
        h('strong', {}, 'Intake queue: '),
        `${overview.intake.waiting} waiting, ${overview.intake.running} running`,
        overview.intake.oldest ? ` · oldest waiting ${formatAge(overview.intake.oldest)}` : '',
      ),
      overview.challenges.length === 0
        ? h(
            'p',
            { class: 'muted' },
            'No challenges are configured (challengesDir in proctor.yaml).',
          )
        : h(
            'div',
            { class: 'cards' },
            overview.challenges.map((c) => challengeCard(c, overview.hours)),
          ),
    ],
  })
}

export function alertsSection(alerts) {
  if (alerts === null) return null
  if (alerts.alerts.length === 0) {
    return h(
      'section',
      { class: 'alerts ok', 'aria-label': 'Alerts' },
      h(
        'p',
        {},
        '✓ No alerts: nothing waits too long, every worker answers, the outbox flows and the disk has room.',
      ),
    )
  }
  return h(
    'section',
    { class: 'alerts', 'aria-labelledby': 'alerts-heading' },
    h('h2', { id: 'alerts-heading' }, `Needs attention (${alerts.alerts.length})`),
    h(
      'ul',
      {},
      alerts.alerts.map((a) =>
        h(
          'li',
          { class: `alert ${a.severity}` },
          h('span', { class: `badge severity-${a.severity}` }, a.severity),
          ' ',
          h('strong', {}, a.kind.replace(/_/g, ' ')),
          ': ',
          a.summary,
          a.since ? h('span', { class: 'muted' }, ' Since ', timeEl(a.since), '.') : null,
        ),
      ),
    ),
  )
}

function challengeCard(c, hours) {
  const headingId = `challenge-${c.id}`
  const { chart, legend, codes } = hourlyChart(c.hours, { title: `${c.title}, finished per hour` })
  const finished = c.hours.reduce(
    (a, x) => a + x.scored + Object.values(x.failures).reduce((s, n) => s + n, 0),
    0,
  )
  const failures = c.hours.reduce(
    (a, x) => a + Object.values(x.failures).reduce((s, n) => s + n, 0),
    0,
  )
  return h(
    'section',
    { class: 'card challenge', 'aria-labelledby': headingId },
    h(
      'div',
      { class: 'card-head' },
      h('h2', { id: headingId }, c.title, ' ', h('span', { class: 'muted id' }, c.id)),
      h(
        'p',
        { class: 'links' },
        link(`/dashboard/submissions?challenge=${encodeURIComponent(c.id)}`, 'Submissions', {
          'data-key': `subs-${c.id}`,
        }),
        link(`/dashboard/challenges/${encodeURIComponent(c.id)}/leaderboard`, 'Leaderboard', {
          'data-key': `board-${c.id}`,
        }),
        h(
          'button',
          {
            type: 'button',
            class: 'button small',
            'data-key': `export-${c.id}`,
            onclick: () =>
              download(
                `/api/export/submissions.csv?challenge=${encodeURIComponent(c.id)}`,
                `submissions-${c.id}.csv`,
              ),
          },
          'Export CSV',
        ),
      ),
    ),
    facts([
      ['Waiting', String(c.queue.waiting)],
      [
        'Oldest waiting',
        c.queue.oldest
          ? h(
              'span',
              {},
              formatAge(c.queue.oldest),
              ' (since ',
              timeEl(c.queue.oldest, { withDate: false }),
              ')',
            )
          : 'none',
      ],
      ['Running', String(c.queue.running)],
      [`Last ${hours} h`, `${finished} finished, ${failures} failed`],
    ]),
    c.running.length > 0
      ? table({
          caption: 'Running now',
          columns: ['Submission', 'State', 'Stage', 'Worker', 'Running for'],
          rows: c.running.map((j) => [
            submissionLink(j.submissionId),
            stateBadge(j.state),
            j.stage,
            h('code', {}, j.workerId ?? '–'),
            formatAge(j.since),
          ]),
        })
      : h('p', { class: 'muted' }, 'Nothing running.'),
    h(
      'ul',
      { class: 'state-counts', 'aria-label': 'Submissions by state' },
      STATES.filter((s) => c.states[s]).map((s) =>
        h('li', {}, stateBadge(s), ' ', String(c.states[s])),
      ),
    ),
    h(
      'figure',
      { class: 'chart-figure' },
      h('figcaption', {}, `Finished per hour, last ${hours} h (by the hour they ended)`),
      chart,
      legend,
      h(
        'details',
        { 'data-key': `numbers-${c.id}` },
        h('summary', {}, 'Show the numbers'),
        table({
          columns: ['Hour', 'Scored', ...codes],
          rows: c.hours
            .filter((x) => x.scored > 0 || Object.keys(x.failures).length > 0)
            .map((x) => [
              hourLabel(x.hour),
              String(x.scored),
              ...codes.map((code) => String(x.failures[code] ?? 0)),
            ]),
          empty: `Nothing finished in the last ${hours} h.`,
        }),
      ),
    ),
  )
}
