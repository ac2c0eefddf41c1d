import { writeFile } from 'node:fs/promises'
import path from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import {
  findParticipantByForgeUser,
  findParticipantsByUsernames,
  loadParticipantsFile,
} from '../../src/participants/directory.ts'
import { createTestContext, type TestContext } from './support/context.ts'

const FILE = `
participants:
  - username: dana
    displayName: Dana
    team: owls
    platformId: 4711
    identities:
      - { forge: gitlab, userId: 77, username: dana }
      - { forge: github, userId: "123456" }
  - username: eve
    identities: []
`

describe('participant directory', () => {
  let t: TestContext

  afterEach(async () => {
    await t.close()
  })

  it('loads a YAML file idempotently and finds participants by forge account', async () => {
    t = await createTestContext({ participants: { participants: [] } })
    const file = path.join(t.dir, 'participants.yaml')
    await writeFile(file, FILE)

    const first = await loadParticipantsFile(t.store.db, file, t.clock, ['gitlab', 'github'])
    const second = await loadParticipantsFile(t.store.db, file, t.clock, ['gitlab', 'github'])

    expect(first).toEqual({ participants: 2, identities: 2, identitiesRemoved: 0 })
    expect(second).toEqual(first)
    expect(await t.store.db.selectFrom('participants').select('username').execute()).toHaveLength(2)
    expect(await findParticipantByForgeUser(t.store.db, 'gitlab', '77')).toMatchObject({
      username: 'dana',
      display_name: 'Dana',
      team: 'owls',
      platform_id: '4711',
    })
    expect(await findParticipantByForgeUser(t.store.db, 'github', '123456')).toMatchObject({
      username: 'dana',
    })
    expect(await findParticipantByForgeUser(t.store.db, 'gitlab', '123456')).toBeUndefined()
    expect(
      (await findParticipantsByUsernames(t.store.db, ['DANA', 'nobody'])).map((p) => p.username),
    ).toEqual(['dana'])
  })

  it('removes an identity deleted from the file and keeps the participant', async () => {
    t = await createTestContext({ participants: { participants: [] } })
    const file = path.join(t.dir, 'participants.yaml')
    await writeFile(file, FILE)
    await loadParticipantsFile(t.store.db, file, t.clock)
    await writeFile(file, FILE.replace('      - { forge: github, userId: "123456" }\n', ''))

    const result = await loadParticipantsFile(t.store.db, file, t.clock)

    expect(result.identitiesRemoved).toBe(1)
    expect(await findParticipantByForgeUser(t.store.db, 'github', '123456')).toBeUndefined()
    expect(await findParticipantByForgeUser(t.store.db, 'gitlab', '77')).toMatchObject({
      username: 'dana',
    })
  })

  it.each([
    [
      'an unknown forge',
      FILE.replace('forge: github', 'forge: gitlb'),
      /identities\.1\.forge gitlb is not a configured forge/,
    ],
    [
      'usernames equal ignoring case',
      `${FILE}  - username: Dana\n`,
      /username Dana is also participants\.0/,
    ],
    [
      'one account listed twice',
      `${FILE}  - username: zed\n    identities: [{ forge: gitlab, userId: 77 }]\n`,
      /gitlab user 77 is listed for both dana and zed/,
    ],
    [
      'a bad username',
      FILE.replace('username: eve', 'username: "e v e"'),
      /participants\.1\.username/,
    ],
    ['an unknown key', FILE.replace('displayName: Dana', 'display: Dana'), /participants\.0/],
  ])('refuses a file with %s, naming the entry', async (_name, text, message) => {
    t = await createTestContext({ participants: { participants: [] } })
    const file = path.join(t.dir, 'participants.yaml')
    await writeFile(file, text)

    await expect(
      loadParticipantsFile(t.store.db, file, t.clock, ['gitlab', 'github']),
    ).rejects.toThrow(message)
  })
})
