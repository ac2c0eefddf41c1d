import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'

import { buildHookApp, countRows, createTestContext, type TestContext } from './support/context.ts'
import { fixtureBytes, forgeHeaders, postHook } from './support/deliveries.ts'

type Forge = 'gitlab' | 'github' | 'gitea'

/** mulberry32: a small seeded generator, so a failing body can be reproduced from the seed. */
function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const SEEDS: Record<Forge, string[]> = {
  gitlab: [
    'gitlab/tag-push-v1.json',
    'gitlab/legacy-repository-only.json',
    'gitlab/tag-delete-v1.json',
    'gitlab/branch-push-test-button.json',
    'gitlab/gitlab-system-hook-repository-update.json',
  ],
  github: ['github/github-push-tag.json', 'github/github-create-tag.json', 'own/github-ping.json'],
  gitea: ['gitea/gitea-push-tag.json', 'gitea/gitea-create-tag.json'],
}

class BodyFuzzer {
  readonly #next: () => number

  constructor(seed: number) {
    this.#next = random(seed)
  }

  int(n: number): number {
    return Math.floor(this.#next() * n)
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T
  }

  value(depth = 0): unknown {
    switch (this.int(depth > 2 ? 6 : 8)) {
      case 0:
        return null
      case 1:
        return this.int(2) === 0
      case 2:
        return this.pick([0, -1, 1.5, 1e308, -0, 2 ** 53 + 1, 42])
      case 3:
        return this.pick([
          '',
          '0'.repeat(40),
          'refs/tags/',
          'refs/tags/v1',
          '../..',
          '\u0000',
          'é🙂',
          'a'.repeat(300),
        ])
      case 4:
        return 'x'.repeat(this.int(3) === 0 ? 200_000 : 20)
      case 5:
        return this.pick([
          'tag_push',
          'push',
          'refs/heads/main',
          'a036965edc3ee197699ef748139f412be040a33d',
        ])
      case 6:
        return Array.from({ length: this.int(4) }, () => this.value(depth + 1))
      default:
        return Object.fromEntries(
          Array.from({ length: this.int(4) }, (_, i) => [`k${i}`, this.value(depth + 1)]),
        )
    }
  }

  deep(levels: number): string {
    const open = this.int(2) === 0 ? '[' : '{"a":'
    const close = open === '[' ? ']' : '}'
    return open.repeat(levels) + '1' + close.repeat(levels)
  }

  /** One body: a mutation of a real delivery, or something made up. */
  body(seedBody: Buffer): Buffer {
    const text = seedBody.toString('utf8')
    switch (this.int(9)) {
      case 0: {
        const bytes = Buffer.from(seedBody)
        for (let i = 0, n = 1 + this.int(8); i < n; i++) {
          const at = this.int(bytes.length)
          bytes[at] = (bytes[at] ?? 0) ^ (1 << this.int(8))
        }
        return bytes
      }
      case 1:
        return seedBody.subarray(0, this.int(seedBody.length))
      case 2:
        return Buffer.from(
          JSON.stringify(this.swapField(JSON.parse(text) as Record<string, unknown>)),
        )
      case 3: {
        const body = JSON.parse(text) as Record<string, unknown>
        const keys = Object.keys(body)
        for (let i = 0, n = 1 + this.int(4); i < n; i++) delete body[this.pick(keys)]
        return Buffer.from(JSON.stringify(body))
      }
      case 4:
        return Buffer.from(JSON.stringify(this.value()))
      case 5:
        return Buffer.from(`{"event_name":"tag_push","ref":${this.deep(2000 + this.int(20_000))}}`)
      case 6:
        return Buffer.from(this.deep(1 + this.int(50_000)))
      case 7:
        return Buffer.from(Array.from({ length: this.int(512) }, () => this.int(256)))
      default: {
        const body = JSON.parse(text) as Record<string, unknown>
        body.ref = this.pick([
          'refs/tags/',
          'refs/tags/-x',
          'refs/tags/a b',
          `refs/tags/${'v'.repeat(300)}`,
          'refs/tags/ok-1',
          7,
        ])
        return Buffer.from(JSON.stringify(body))
      }
    }
  }

  swapField(body: Record<string, unknown>): Record<string, unknown> {
    const keys = Object.keys(body)
    for (let i = 0, n = 1 + this.int(3); i < n; i++) {
      const key = this.pick(keys)
      const inner = body[key]
      if (inner && typeof inner === 'object' && !Array.isArray(inner) && this.int(2) === 0) {
        const innerKeys = Object.keys(inner)
        if (innerKeys.length > 0) {
          ;(inner as Record<string, unknown>)[this.pick(innerKeys)] = this.value()
          continue
        }
      }
      body[key] = this.value()
    }
    return body
  }
}

const PER_FORGE = 1000

describe('hook fuzzing', () => {
  let t: TestContext
  let app: FastifyInstance

  beforeAll(async () => {
    t = await createTestContext()
    app = await buildHookApp(t.ctx)
  })

  afterAll(async () => {
    await app.close()
    await t.close()
  })

  it.each(['gitlab', 'github', 'gitea'] as const)(
    'answers every signed random or mutated body at /hooks/%s without a 5xx, storing nothing for a 4xx',
    async (forge) => {
      const fuzzer = new BodyFuzzer(0x5eed + forge.length)
      const seeds = SEEDS[forge].map((file) => fixtureBytes(file))
      const statuses = new Map<number, number>()
      const problems: string[] = []

      for (let i = 0; i < PER_FORGE; i++) {
        const body = fuzzer.body(fuzzer.pick(seeds))
        const before = await countRows(t.store)
        const answer = await postHook(app, `/hooks/${forge}`, body, forgeHeaders(forge, body))
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)

        if (answer.status >= 500)
          problems.push(`#${i} ${answer.status}: ${JSON.stringify(answer.body)}`)
        if (answer.status >= 400) {
          const after = await countRows(t.store)
          if (JSON.stringify(after) !== JSON.stringify(before))
            problems.push(`#${i} ${answer.status} stored rows`)
        }
      }

      expect(problems).toEqual([])
      // The corpus reaches every kind of answer, or it tests less than it claims.
      expect([...statuses.keys()].sort()).toEqual(expect.arrayContaining([200, 400]))
    },
  )
})
