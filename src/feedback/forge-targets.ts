import type { Logger } from 'pino'

import type { ForgeConfig } from '../config/proctor-config.ts'
import type { Clock } from '../domain/clock.ts'
import { ProctorError } from '../domain/errors.ts'
import type { OutboxRoute } from '../outbox/routes.ts'
import type { OutboxTarget } from '../outbox/target.ts'
import type { Store } from '../store/database.ts'
import { GitlabFeedback } from './gitlab-feedback.ts'

export interface ForgeFeedbackDeps {
  readonly store: Store
  readonly clock: Clock
  readonly log: Logger
  readonly publicUrl: string | undefined
  readonly redact: (text: string) => string
}

/**
 * One outbox target (`forge:<id>`) per forge with feedback turned on. Feedback is written
 * for GitLab; a GitHub or Gitea forge with feedback on is told so at start and gets none.
 */
export function forgeFeedbackTargets(
  forges: readonly ForgeConfig[],
  deps: ForgeFeedbackDeps,
): { targets: OutboxTarget[]; routes: OutboxRoute[] } {
  const targets: OutboxTarget[] = []
  for (const forge of forges) {
    if (!forge.feedback.commitStatus && !forge.feedback.issue) continue
    if (!forge.apiToken) {
      throw new ProctorError(
        'config_invalid',
        `forge ${forge.id}: feedback is on but apiToken is not set; set forges[].apiToken (a token that may post statuses and issues) or turn feedback off`,
      )
    }
    if (forge.kind !== 'gitlab') {
      deps.log.warn(
        { forge: forge.id, kind: forge.kind },
        'forge feedback is implemented for GitLab only; this forge gets none',
      )
      continue
    }
    targets.push(new GitlabFeedback(forge, deps))
  }
  const routes = targets.map((t) => ({
    target: t.id,
    audience: 'forge' as const,
    forge: t.id.slice('forge:'.length),
  }))
  return { targets, routes }
}
