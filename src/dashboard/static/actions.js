// Organizer actions on a submission, each behind a confirmation dialog that asks for the
// reason recorded on the timeline with the actor.

import { api } from './api.js'
import { h } from './dom.js'

const CANCELLABLE = ['received', 'queued', 'building', 'evaluating']
const REQUEUEABLE = ['scored', 'failed', 'cancelled']

/** The actions panel. `update(state)` enables what the state allows. */
export function actionsPanel(submissionId, { onDone }) {
  const result = h('p', { class: 'action-result', role: 'status' })
  const cancel = h(
    'button',
    { type: 'button', class: 'button danger', id: 'action-cancel' },
    'Cancel…',
  )
  const requeue = h(
    'button',
    { type: 'button', class: 'button', id: 'action-requeue' },
    'Re-queue…',
  )
  const rerunTip = h(
    'span',
    { role: 'tooltip', id: 'rerun-tip', class: 'tooltip' },
    'Re-run comes later: it will add a new evaluation of the archived image and keep this result.',
  )
  const rerun = h(
    'button',
    {
      type: 'button',
      class: 'button',
      id: 'action-rerun',
      'aria-disabled': 'true',
      'aria-describedby': 'rerun-tip',
    },
    'Re-run',
  )
  const hint = h('p', { class: 'muted small' })

  cancel.addEventListener('click', () =>
    confirmAction({
      title: `Cancel submission #${submissionId}?`,
      explain:
        'A waiting job never starts; a running one is stopped and its containers killed. The participant’s quota unit is refunded.',
      confirmLabel: 'Cancel submission',
      danger: true,
      run: (reason) =>
        api(`/api/submissions/${submissionId}/cancel`, { method: 'POST', body: { reason } }),
      done: (r) => `Cancelled (was ${r.from}${r.refunded ? '; quota unit refunded' : ''}).`,
    }),
  )
  requeue.addEventListener('click', () =>
    confirmAction({
      title: `Re-queue submission #${submissionId}?`,
      explain:
        'It is evaluated again as a new evaluation; the earlier ones are kept. A re-queue is not charged to the participant’s quota.',
      confirmLabel: 'Re-queue',
      run: (reason) =>
        api(`/api/submissions/${submissionId}/requeue`, { method: 'POST', body: { reason } }),
      done: (r) => `Re-queued as evaluation #${r.evaluationNumber} (attempt ${r.attempt}).`,
    }),
  )

  function confirmAction({ title, explain, confirmLabel, danger = false, run, done }) {
    const error = h('p', { class: 'error', id: 'action-error', role: 'alert', hidden: true })
    const reason = h('textarea', {
      id: 'action-reason',
      name: 'reason',
      rows: 3,
      maxlength: 500,
      // Checked here, not by the browser: the message is ours, in the dialog, and read out.
      'aria-required': 'true',
      'aria-describedby': 'action-reason-help action-error',
    })
    const submit = h(
      'button',
      { type: 'submit', class: `button ${danger ? 'danger' : 'primary'}` },
      confirmLabel,
    )
    const dialog = h(
      'dialog',
      { class: 'confirm', 'aria-labelledby': 'confirm-title' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'confirm-title' }, title),
        h('p', {}, explain),
        h('label', { for: 'action-reason' }, 'Reason'),
        reason,
        h(
          'p',
          { id: 'action-reason-help', class: 'muted small' },
          'Recorded on the timeline with your token’s name.',
        ),
        error,
        h(
          'div',
          { class: 'dialog-buttons' },
          submit,
          h(
            'button',
            { type: 'button', class: 'button', value: 'keep', onclick: () => dialog.close() },
            'Keep it',
          ),
        ),
      ),
    )
    dialog.querySelector('form').addEventListener('submit', async (event) => {
      event.preventDefault()
      if (!reason.value.trim()) {
        error.hidden = false
        error.textContent = 'Give a reason: it goes on the timeline.'
        reason.focus()
        return
      }
      submit.disabled = true
      try {
        const r = await run(reason.value.trim())
        dialog.close()
        result.textContent = done(r)
        onDone()
      } catch (err) {
        error.hidden = false
        error.textContent = err.message
        submit.disabled = false
      }
    })
    dialog.addEventListener('close', () => {
      dialog.remove()
      document.getElementById(danger ? 'action-cancel' : 'action-requeue')?.focus()
    })
    document.body.append(dialog)
    dialog.showModal()
    reason.focus()
  }

  const element = h(
    'section',
    { class: 'card actions', 'aria-labelledby': 'actions-heading' },
    h('h2', { id: 'actions-heading' }, 'Actions'),
    h(
      'div',
      { class: 'action-buttons' },
      cancel,
      requeue,
      h('span', { class: 'has-tooltip' }, rerun, rerunTip),
    ),
    hint,
    result,
  )

  function update(state, allowed) {
    element.hidden = !allowed
    cancel.disabled = !CANCELLABLE.includes(state)
    requeue.disabled = !REQUEUEABLE.includes(state)
    hint.textContent = CANCELLABLE.includes(state)
      ? 'It has not ended: it can be cancelled.'
      : REQUEUEABLE.includes(state)
        ? 'It has ended: it can be re-queued.'
        : 'A rejected submission was never valid: the participant pushes a fixed tag.'
  }
  return { element, update }
}
