// Workers: alive or not, what they run, what they can run, when they last answered.

import { api } from '../api.js'
import { formatAge, h, submissionLink, table, timeEl } from '../dom.js'
import { keepFresh } from '../refresh.js'

export function workersPage({ main, signal }) {
  document.title = 'Workers · proctor'
  const body = h('div')
  main.replaceChildren(h('h1', {}, 'Workers'), body)

  keepFresh(body, {
    everyMs: 5000,
    signal,
    load: () => api('/api/workers', { signal }),
    render: ({ workers }) =>
      table({
        caption: `${workers.filter((w) => w.healthy).length} answering of ${workers.length} (alive now, or ended in the last day)`,
        columns: [
          'Worker',
          'Status',
          'Running',
          'Slots',
          'Queues',
          'Capabilities',
          'Last heartbeat',
          'Started',
        ],
        rows: workers.map((w) => [
          h('span', {}, h('code', {}, w.id), h('br'), h('span', { class: 'muted small' }, w.host)),
          workerStatus(w),
          w.running.length === 0
            ? h('span', { class: 'muted' }, 'idle')
            : h(
                'ul',
                { class: 'plain' },
                w.running.map((j) =>
                  h(
                    'li',
                    {},
                    j.submissionId ? submissionLink(j.submissionId) : `job ${j.jobId}`,
                    ` ${j.kind} · ${j.queue}${j.stage ? ` · ${j.stage}` : ''}`,
                  ),
                ),
              ),
          `${w.running.length} / ${w.slots}`,
          w.queues.join(', '),
          w.capabilities.length ? w.capabilities.join(', ') : h('span', { class: 'muted' }, 'none'),
          h(
            'span',
            {},
            `${formatAge(w.heartbeatAt)} ago`,
            h('br'),
            h('span', { class: 'muted small' }, timeEl(w.heartbeatAt)),
          ),
          timeEl(w.startedAt),
        ]),
        empty:
          'No worker has started in the last day. Start one with `proctor worker` (or `proctor serve`).',
      }),
  })
}

function workerStatus(w) {
  if (w.state !== 'alive') return h('span', { class: `badge worker-${w.state}` }, w.state)
  if (w.healthy) return h('span', { class: 'badge worker-alive' }, 'alive')
  return h(
    'span',
    { class: 'badge worker-silent', title: 'No heartbeat within alerts.workerSilentSeconds' },
    `silent ${formatAge(w.heartbeatAt)}`,
  )
}
