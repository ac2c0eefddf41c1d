import type { FastifyInstance } from 'fastify'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import {
  buildHookApp,
  countRows,
  createTestContext,
  GITLAB_SECRETS,
  type TestContext,
} from './support/context.ts'
import { fixtureBytes, forgeHeaders, postHook, type HookAnswer } from './support/deliveries.ts'

type Forge = 'gitlab' | 'github' | 'gitea'

interface Delivery {
  forge: Forge
  /** A fixture under test/fixtures/hooks, sent byte for byte. */
  body: string
  /** Replaces or adds headers; `null` removes one. Signed for the forge unless replaced. */
  headers?: Record<string, string | null>
  url?: string
}

interface HookCase {
  name: string
  /** Deliveries made first (their answers are not checked here). */
  earlier?: Delivery[]
  delivery: Delivery
  status: number
  reply?: Record<string, unknown>
  /** Rows after the case: hook events (of which ignored), jobs. */
  stored: { events: number; ignored: number; jobs: number }
}

const T = 'test-fixture-key'
const CASES: HookCase[] = [
  // Shared fixtures (GitLab).
  {
    name: 'accepts a new tag push with 202',
    delivery: { forge: 'gitlab', body: 'gitlab/tag-push-v1.json' },
    status: 202,
    reply: { status: 'accepted' },
    stored: { events: 1, ignored: 0, jobs: 1 },
  },
  {
    name: 'answers the second copy of a tag push as a duplicate naming the first event',
    earlier: [{ forge: 'gitlab', body: 'gitlab/tag-push-v1.json' }],
    delivery: { forge: 'gitlab', body: 'gitlab/tag-push-v1-second-copy.json' },
    status: 200,
    reply: { status: 'duplicate', eventId: 1 },
    stored: { events: 1, ignored: 0, jobs: 1 },
  },
  {
    name: 'records a tag deletion as ignored',
    delivery: { forge: 'gitlab', body: 'gitlab/tag-delete-v1.json' },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: "records the test button's branch push as ignored",
    delivery: { forge: 'gitlab', body: 'gitlab/branch-push-test-button.json' },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'accepts the legacy shape with only a repository object',
    delivery: { forge: 'gitlab', body: 'gitlab/legacy-repository-only.json' },
    status: 202,
    stored: { events: 1, ignored: 0, jobs: 1 },
  },
  {
    name: 'accepts two tags on the same commit as two events',
    earlier: [{ forge: 'gitlab', body: 'gitlab/tag-push-v1.json' }],
    delivery: { forge: 'gitlab', body: 'gitlab/tag-push-v10.json' },
    status: 202,
    stored: { events: 2, ignored: 0, jobs: 2 },
  },
  {
    name: 'accepts a system hook tag push (annotated: after is the tag object)',
    delivery: {
      forge: 'gitlab',
      body: 'gitlab/gitlab-system-hook-tag-push.json',
      headers: { 'x-gitlab-token': 'made-up-shared-secret-7Qx2', 'x-gitlab-event': 'System Hook' },
      url: '/hooks/gitlab/system',
    },
    status: 202,
    stored: { events: 1, ignored: 0, jobs: 1 },
  },
  {
    name: 'accepts a project hook tag push with the second secret',
    delivery: {
      forge: 'gitlab',
      body: 'gitlab/gitlab-project-hook-tag-push.json',
      headers: { 'x-gitlab-token': GITLAB_SECRETS[1] ?? '', 'x-gitlab-event': 'Tag Push Hook' },
    },
    status: 202,
    stored: { events: 1, ignored: 0, jobs: 1 },
  },
  {
    name: 'records a system hook branch push as ignored',
    delivery: { forge: 'gitlab', body: 'gitlab/gitlab-system-hook-push.json' },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'records repository_update as ignored (classified by body, not by the System Hook header)',
    delivery: {
      forge: 'gitlab',
      body: 'gitlab/gitlab-system-hook-repository-update.json',
      headers: { 'x-gitlab-event': 'System Hook' },
    },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'ignores a Tag Push Hook header on a branch push body',
    delivery: {
      forge: 'gitlab',
      body: 'gitlab/branch-push-test-button.json',
      headers: { 'x-gitlab-event': 'Tag Push Hook' },
    },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'refuses a wrong token with 401 and stores nothing',
    delivery: {
      forge: 'gitlab',
      body: 'gitlab/tag-push-v1.json',
      headers: { 'x-gitlab-token': 'wrong' },
    },
    status: 401,
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'refuses a missing token with 401',
    delivery: {
      forge: 'gitlab',
      body: 'gitlab/tag-push-v1.json',
      headers: { 'x-gitlab-token': null },
    },
    status: 401,
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'refuses a token that is a prefix of a secret',
    delivery: {
      forge: 'gitlab',
      body: 'gitlab/tag-push-v1.json',
      headers: { 'x-gitlab-token': 'test-secre' },
    },
    status: 401,
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'answers 404 for a forge that is not configured',
    delivery: { forge: 'gitlab', body: 'gitlab/tag-push-v1.json', url: '/hooks/bitbucket' },
    status: 404,
    stored: { events: 0, ignored: 0, jobs: 0 },
  },

  // Our own GitLab cases.
  {
    name: 'answers 400 naming after when it is missing',
    delivery: { forge: 'gitlab', body: 'own/gitlab-tag-push-missing-after.json' },
    status: 400,
    reply: { field: 'after', message: 'after is required' },
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'answers 400 naming after when it is a number',
    delivery: { forge: 'gitlab', body: 'own/gitlab-tag-push-after-number.json' },
    status: 400,
    reply: { field: 'after', message: 'after must be a string, not a number' },
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'answers 400 naming user_id when it is missing',
    delivery: { forge: 'gitlab', body: 'own/gitlab-tag-push-missing-user.json' },
    status: 400,
    reply: { field: 'user_id' },
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'refuses a project path with .. segments',
    delivery: { forge: 'gitlab', body: 'own/gitlab-tag-push-unsafe-path.json' },
    status: 400,
    reply: { field: 'project.path_with_namespace' },
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'refuses a tag name git would refuse',
    delivery: { forge: 'gitlab', body: 'own/gitlab-tag-push-bad-tag.json' },
    status: 400,
    reply: { field: 'ref' },
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'answers 400 when the body names no event kind',
    delivery: { forge: 'gitlab', body: 'own/gitlab-no-event-kind.json' },
    status: 400,
    reply: { field: 'event_name' },
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'records a merge request event as ignored',
    delivery: { forge: 'gitlab', body: 'own/gitlab-merge-request.json' },
    status: 200,
    reply: { status: 'ignored', reason: 'merge_request event: only tag pushes are submissions' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'records a push to a ref that is neither branch nor tag as ignored',
    delivery: { forge: 'gitlab', body: 'own/gitlab-push-other-ref.json' },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'treats the same Idempotency-Key as a duplicate even with another body',
    earlier: [
      { forge: 'gitlab', body: 'gitlab/tag-push-v1.json', headers: { 'idempotency-key': T } },
    ],
    delivery: {
      forge: 'gitlab',
      body: 'gitlab/tag-push-v11.json',
      headers: { 'idempotency-key': T },
    },
    status: 200,
    reply: { status: 'duplicate', eventId: 1 },
    stored: { events: 1, ignored: 0, jobs: 1 },
  },
  {
    name: 'answers 400 for a body that is not JSON',
    delivery: { forge: 'gitlab', body: 'gitlab/gitlab-system-hook.headers.txt' },
    status: 400,
    reply: { field: '(body)' },
    stored: { events: 0, ignored: 0, jobs: 0 },
  },

  // GitHub, with the sample delivery's own signature.
  {
    name: 'accepts a GitHub tag push signed as in the sample delivery',
    delivery: {
      forge: 'github',
      body: 'github/github-push-tag.json',
      headers: {
        'x-hub-signature-256':
          'sha256=aca8394a64ea8304a10e036144fb8ccce0330728f57de9044536c0c4b20284c6',
        'x-github-delivery': '0b9d4e20-16a8-11f1-8c3e-7a2b9f1c0d44',
      },
    },
    status: 202,
    stored: { events: 1, ignored: 0, jobs: 1 },
  },
  {
    name: 'refuses a GitHub delivery signed with another secret',
    delivery: {
      forge: 'github',
      body: 'github/github-push-tag.json',
      headers: { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` },
    },
    status: 401,
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'refuses a GitHub delivery with only the legacy SHA-1 signature',
    delivery: {
      forge: 'github',
      body: 'github/github-push-tag.json',
      headers: { 'x-hub-signature-256': null, 'x-hub-signature': 'sha1=0123' },
    },
    status: 401,
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'treats a redelivered GitHub delivery id as a duplicate',
    earlier: [
      {
        forge: 'github',
        body: 'github/github-push-tag.json',
        headers: { 'x-github-delivery': 'd-1' },
      },
    ],
    delivery: {
      forge: 'github',
      body: 'github/github-push-tag.json',
      headers: { 'x-github-delivery': 'd-1' },
    },
    status: 200,
    reply: { status: 'duplicate' },
    stored: { events: 1, ignored: 0, jobs: 1 },
  },
  {
    name: 'records a GitHub create event as ignored',
    delivery: {
      forge: 'github',
      body: 'github/github-create-tag.json',
      headers: { 'x-github-event': 'create' },
    },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'records a GitHub ping as ignored',
    delivery: {
      forge: 'github',
      body: 'own/github-ping.json',
      headers: { 'x-github-event': 'ping' },
    },
    status: 200,
    reply: { status: 'ignored', reason: 'test delivery (ping): the hook works' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'records a GitHub branch push as ignored',
    delivery: { forge: 'github', body: 'own/github-branch-push.json' },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'records a GitHub tag deletion as ignored',
    delivery: { forge: 'github', body: 'own/github-tag-delete.json' },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'records a GitHub issues event as ignored',
    delivery: {
      forge: 'github',
      body: 'own/github-issues.json',
      headers: { 'x-github-event': 'issues' },
    },
    status: 200,
    reply: { status: 'ignored', reason: 'issues event: only tag pushes are submissions' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'answers 400 naming sender when a GitHub tag push lacks it',
    delivery: { forge: 'github', body: 'own/github-push-tag-missing-sender.json' },
    status: 400,
    reply: { field: 'sender', message: 'sender is required' },
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'accepts a GitHub tag push without head_commit (after is peeled later)',
    delivery: { forge: 'github', body: 'own/github-push-tag-no-head-commit.json' },
    status: 202,
    stored: { events: 1, ignored: 0, jobs: 1 },
  },

  // Gitea / Forgejo.
  {
    name: 'accepts a Gitea tag push signed as in the sample delivery',
    delivery: {
      forge: 'gitea',
      body: 'gitea/gitea-push-tag.json',
      headers: {
        'x-gitea-signature': '375909d9966fafe5e12feef606bfa95d30a443a0082df5fc0ca8555ecdd62e5b',
      },
    },
    status: 202,
    stored: { events: 1, ignored: 0, jobs: 1 },
  },
  {
    name: 'accepts the Forgejo signature header',
    delivery: {
      forge: 'gitea',
      body: 'gitea/gitea-push-tag.json',
      headers: {
        'x-gitea-signature': null,
        'x-forgejo-signature': '375909d9966fafe5e12feef606bfa95d30a443a0082df5fc0ca8555ecdd62e5b',
      },
    },
    status: 202,
    stored: { events: 1, ignored: 0, jobs: 1 },
  },
  {
    name: 'refuses a Gitea signature with a sha256= prefix (Gitea sends bare hex)',
    delivery: {
      forge: 'gitea',
      body: 'gitea/gitea-push-tag.json',
      headers: {
        'x-gitea-signature':
          'sha256=375909d9966fafe5e12feef606bfa95d30a443a0082df5fc0ca8555ecdd62e5b',
      },
    },
    status: 401,
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
  {
    name: 'records a Gitea create event as ignored',
    delivery: {
      forge: 'gitea',
      body: 'gitea/gitea-create-tag.json',
      headers: { 'x-gitea-event': 'create' },
    },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'records a Gitea tag deletion as ignored',
    delivery: { forge: 'gitea', body: 'own/gitea-tag-delete.json' },
    status: 200,
    reply: { status: 'ignored' },
    stored: { events: 1, ignored: 1, jobs: 0 },
  },
  {
    name: 'answers 400 naming repository.id when a Gitea push lacks it',
    delivery: { forge: 'gitea', body: 'own/gitea-push-tag-missing-repo-id.json' },
    status: 400,
    reply: { field: 'repository.id' },
    stored: { events: 0, ignored: 0, jobs: 0 },
  },
]

function headersFor(delivery: Delivery, body: Buffer): Record<string, string> {
  const headers = forgeHeaders(delivery.forge, body)
  for (const [name, value] of Object.entries(delivery.headers ?? {})) {
    if (value === null) delete headers[name]
    else headers[name] = value
  }
  return headers
}

async function send(app: FastifyInstance, delivery: Delivery): Promise<HookAnswer> {
  const body = fixtureBytes(delivery.body)
  return postHook(app, delivery.url ?? `/hooks/${delivery.forge}`, body, headersFor(delivery, body))
}

describe('hook deliveries', () => {
  let t: TestContext
  let app: FastifyInstance

  beforeEach(async () => {
    t = await createTestContext()
    app = await buildHookApp(t.ctx)
  })

  afterEach(async () => {
    await app.close()
    await t.close()
  })

  it.each(CASES)('$name', async (hookCase) => {
    for (const earlier of hookCase.earlier ?? []) {
      expect((await send(app, earlier)).status).toBeLessThan(300)
    }

    const answer = await send(app, hookCase.delivery)

    expect(answer.status).toBe(hookCase.status)
    if (hookCase.reply) expect(answer.body).toMatchObject(hookCase.reply)
    const rows = await countRows(t.store)
    expect({ events: rows.events, ignored: rows.ignored, jobs: rows.jobs }).toEqual(hookCase.stored)
    expect(rows.submissions).toBe(0)
  })
})
