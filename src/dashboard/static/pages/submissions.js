// Submissions, newest first, filtered by challenge and state.

import { api } from '../api.js'
import { formatAge, formatScore, h, link, stateBadge, submissionLink, table } from '../dom.js'
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
const PAGE = 50

export function submissionsPage({ main, signal, query }) {
  document.title = 'Submissions · proctor'
  const challenge = query.get('challenge') ?? ''
  const state = query.get('state') ?? ''
  const before = query.get('before') ?? ''

  const filters = h(
    'form',
    { class: 'filters', method: 'get', action: '/dashboard/submissions' },
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'f-challenge' }, 'Challenge'),
      h('input', { id: 'f-challenge', name: 'challenge', value: challenge, placeholder: 'all' }),
    ),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'f-state' }, 'State'),
      h(
        'select',
        { id: 'f-state', name: 'state' },
        h('option', { value: '' }, 'any'),
        STATES.map((s) => h('option', { value: s, selected: s === state }, s)),
      ),
    ),
    h('button', { type: 'submit', class: 'button' }, 'Show'),
  )
  const body = h('div')
  main.replaceChildren(h('h1', {}, 'Submissions'), filters, body)

  const params = new URLSearchParams({ limit: String(PAGE) })
  if (challenge) params.set('challenge', challenge)
  if (state) params.set('state', state)
  if (before) params.set('before', before)

  keepFresh(body, {
    everyMs: 10_000,
    signal,
    load: () => api(`/api/submissions?${params}`, { signal }),
    render: ({ submissions }) => {
      const older = new URLSearchParams(params)
      older.delete('limit')
      const last = submissions.at(-1)
      if (last) older.set('before', String(last.id))
      return [
        table({
          caption: `${submissions.length} submission(s)${before ? ` before #${before}` : ''}`,
          columns: [
            'Submission',
            'Challenge',
            'Project',
            'Tag',
            'State',
            'Score',
            'Reason',
            'Pushed',
          ],
          rows: submissions.map((s) => [
            submissionLink(s.id),
            s.challengeId,
            s.project.path,
            h('code', {}, s.tag),
            stateBadge(s.state),
            formatScore(s.score),
            s.reason?.code ?? '',
            `${formatAge(s.createdAt)} ago`,
          ]),
          empty: 'No submissions match.',
        }),
        submissions.length === PAGE
          ? h('p', {}, link(`/dashboard/submissions?${older}`, 'Older submissions →'))
          : null,
      ]
    },
  })
}
