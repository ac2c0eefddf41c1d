import { z } from 'zod'

/**
 * A forge's `feedback` section: what participants see on their repository. Off unless
 * turned on; needs the forge's `apiToken` (GitLab: a token with the `api` scope that can
 * post statuses and issues in participants' projects).
 *
 *   forges:
 *     - id: gitlab
 *       kind: gitlab
 *       apiToken: ${GITLAB_API_TOKEN}
 *       feedback:
 *         commitStatus: true          # pending → running → success | failed on the tag's commit
 *         issue: true                 # one issue per submission, edited as it moves
 *         issueMinIntervalSeconds: 5  # at most one edit per issue this often
 */
export const forgeFeedbackSchema = z
  .object({
    commitStatus: z.boolean().default(false),
    issue: z.boolean().default(false),
    issueMinIntervalSeconds: z.coerce.number().min(0).default(5),
    /** The commit status's name (GitLab shows it beside the commit). */
    statusName: z.string().min(1).default('proctor'),
    labels: z.array(z.string()).default(['proctor']),
    timeoutMs: z.coerce.number().int().positive().default(10_000),
    /** Lines of the failing stage's log shown in the issue (when the challenge allows). */
    logTailLines: z.coerce.number().int().min(0).default(40),
  })
  .strict()

export type ForgeFeedbackConfig = z.infer<typeof forgeFeedbackSchema>
