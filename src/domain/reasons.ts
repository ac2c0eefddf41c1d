/**
 * Every reason a submission can end or wait, in one list.
 *
 * `charge` says what happens to the participant's quota:
 * - `never`: the submission was never accepted into the queue, so nothing was charged
 * - `kept`: the participant caused it; the unit stays charged
 * - `refunded`: proctor, its infrastructure or the organizer caused it; the unit is refunded
 *
 * Messages shown to participants are built where the failure happens (they carry the values
 * involved); `hint` is the generic next step shown beside them.
 */
export const REASONS = {
  // received → rejected: not a valid submission.
  manifest_missing: {
    charge: 'never',
    hint: 'Add crowdai.json at the repository root, commit it and push a new tag.',
  },
  manifest_invalid: {
    charge: 'never',
    hint: 'Fix crowdai.json (it must be a JSON object with a "challenge_id" string) and push a new tag.',
  },
  challenge_unknown: {
    charge: 'never',
    hint: 'Set "challenge_id" in crowdai.json to the id of a challenge that accepts submissions.',
  },
  challenge_closed: {
    charge: 'never',
    hint: 'The challenge does not accept submissions now; see its rounds for the dates.',
  },
  name_mismatch: {
    charge: 'never',
    hint: 'Name the repository after the challenge id, or fix "challenge_id" in crowdai.json.',
  },
  participant_unknown: {
    charge: 'never',
    hint: 'Register with the challenge (the organizers map your forge account to a participant).',
  },
  tag_ignored: {
    charge: 'never',
    hint: "Tags must match the challenge's tag pattern to be submitted.",
  },
  debug_not_allowed: {
    charge: 'never',
    hint: 'This challenge does not take debug submissions: remove "debug" from crowdai.json.',
  },
  // Added by intake: the forge no longer had the tagged commit when proctor fetched it (the tag
  // was moved or deleted right after the push). Rejected before any charge.
  commit_unreachable: {
    charge: 'never',
    hint: 'The tagged commit could not be fetched; push the tag again and leave it in place.',
  },

  // Failures the participant caused: the unit stays charged.
  quota_exceeded: { charge: 'never', hint: 'Wait for the next free slot shown in the message.' },
  platform_refused: {
    charge: 'never',
    hint: 'The challenge platform refused the submission; its message says why.',
  },
  commit_missing: {
    charge: 'kept',
    hint: 'The tagged commit is no longer in the repository; push the tag again.',
  },
  build_failed: {
    charge: 'kept',
    hint: 'Read the end of the build log, fix the build, push a new tag.',
  },
  image_too_large: {
    charge: 'kept',
    hint: 'Make the image smaller than the limit and push a new tag.',
  },
  entrypoint_missing: {
    charge: 'kept',
    hint: 'Add an executable run.sh at the repository root (or the entry point the challenge names).',
  },
  time_limit: { charge: 'kept', hint: 'Make the program finish within the time limit.' },
  memory_limit: {
    charge: 'kept',
    hint: 'Use less memory than the limit (files in /tmp count too).',
  },
  crashed: { charge: 'kept', hint: 'Your program exited with an error; read its log.' },
  output_missing: { charge: 'kept', hint: 'Write your predictions into $PROCTOR_OUTPUT.' },
  output_invalid: {
    charge: 'kept',
    hint: 'The grader rejected the predictions; its message says why.',
  },
  output_too_large: { charge: 'kept', hint: 'Write less output than the limit.' },

  // Failures proctor, its infrastructure or the organizer caused: the unit is refunded.
  scoring_failed: {
    charge: 'refunded',
    hint: 'The organizers have been told; nothing to do on your side.',
  },
  worker_lost: {
    charge: 'refunded',
    hint: 'proctor lost the machine running it; push the tag again to retry.',
  },
  infrastructure: {
    charge: 'refunded',
    hint: 'proctor had a problem of its own; it was not your fault.',
  },
  cancelled: { charge: 'refunded', hint: 'The submission was cancelled.' },
} as const satisfies Record<string, { charge: 'never' | 'kept' | 'refunded'; hint: string }>

export type ReasonCode = keyof typeof REASONS

export function isReasonCode(value: string): value is ReasonCode {
  return Object.hasOwn(REASONS, value)
}

export function isRefunded(code: ReasonCode): boolean {
  return REASONS[code].charge === 'refunded'
}
