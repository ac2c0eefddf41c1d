// A challenge's leaderboard: the platform's (GET /api/leaderboards/:challenge) when proctor
// serves one, else its scored submissions by score.

import { api, ApiError, download } from '../api.js'
import { formatScore, h, submissionLink, table, timeEl } from '../dom.js'
import { keepFresh } from '../refresh.js'

export function leaderboardPage({ main, params, signal }) {
  const challenge = params[0]
  document.title = `Leaderboard ${challenge} · proctor`
  const body = h('div')
  main.replaceChildren(
    h('h1', {}, `Leaderboard: ${challenge}`),
    h(
      'p',
      { class: 'links' },
      h(
        'a',
        { href: `/dashboard/submissions?challenge=${encodeURIComponent(challenge)}` },
        `All submissions of ${challenge}`,
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'button small',
          onclick: () =>
            download(
              `/api/export/leaderboard.csv?challenge=${encodeURIComponent(challenge)}`,
              `leaderboard-${challenge}.csv`,
            ),
        },
        'Export CSV',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'button small',
          onclick: () =>
            download(
              `/api/export/leaderboard.json?challenge=${encodeURIComponent(challenge)}`,
              `leaderboard-${challenge}.json`,
            ),
        },
        'Export JSON',
      ),
    ),
    body,
  )

  keepFresh(body, {
    everyMs: 15_000,
    signal,
    load: () => loadBoard(challenge, signal),
    render: (board) =>
      board.kind === 'platform'
        ? [
            h(
              'p',
              { class: 'muted' },
              `Round ${board.roundId ?? '(none)'} · ${board.policy} submission counts · ${board.direction}`,
              board.frozenAt ? ` · frozen at ${board.frozenAt}` : '',
              board.scoresHidden ? ' · scores hidden from participants until released' : '',
            ),
            table({
              caption: `${board.entries.length} entr${board.entries.length === 1 ? 'y' : 'ies'}`,
              columns: [
                'Rank',
                'Name',
                'Score',
                'Secondary',
                'Submission',
                'Submitted',
                'Scored submissions',
              ],
              rows: board.entries.map((e) => [
                e.rank === null ? '–' : String(e.rank),
                e.name,
                formatScore(e.score),
                formatScore(e.scoreSecondary),
                submissionLink(e.submissionId),
                timeEl(e.submittedAt),
                String(e.submissions),
              ]),
              empty: 'No scored submission yet.',
            }),
          ]
        : [
            h(
              'p',
              { class: 'muted' },
              'This proctor serves no leaderboard: scored submissions by score, best first.',
            ),
            table({
              columns: ['#', 'Submission', 'Project', 'Tag', 'Score', 'Pushed'],
              rows: board.submissions.map((s, i) => [
                String(i + 1),
                submissionLink(s.id),
                s.project.path,
                h('code', {}, s.tag),
                formatScore(s.score),
                timeEl(s.createdAt),
              ]),
              empty: 'No scored submission yet.',
            }),
          ],
  })
}

async function loadBoard(challenge, signal) {
  try {
    return {
      kind: 'platform',
      ...(await api(`/api/leaderboards/${encodeURIComponent(challenge)}`, { signal })),
    }
  } catch (err) {
    // Fastify's own 404 for a route it does not have says "Not Found"; proctor's says not_found.
    if (!(err instanceof ApiError) || err.status !== 404 || err.code === 'not_found') throw err
  }
  const { submissions } = await api(
    `/api/submissions?challenge=${encodeURIComponent(challenge)}&state=scored&limit=500`,
    { signal },
  )
  return {
    kind: 'scored',
    submissions: submissions.sort((a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity)),
  }
}
