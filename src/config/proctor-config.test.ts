import { describe, expect, it } from 'vitest'

import { parseConfig } from './proctor-config.ts'

describe('proctor.yaml overrides', () => {
  it('takes PROCTOR_ keys with __ between levels, and ${NAME} from the environment', () => {
    const config = parseConfig(
      {
        forges: [
          {
            id: 'gitlab',
            kind: 'gitlab',
            baseUrl: 'https://g.test',
            cloneUrl: 'git://h/{path}.git',
            hookSecrets: ['${SECRET}'],
          },
        ],
      },
      {
        env: {
          SECRET: 's3cret',
          PROCTOR_SERVER__PORT: '8181',
          PROCTOR_WORKER__QUEUES: '["iris"]',
          PROCTOR_CHALLENGES_DIR: '/c',
        },
        baseDir: '/',
      },
    )
    expect(config.server.port).toBe(8181)
    expect(config.worker.queues).toEqual(['iris'])
    expect(config.challengesDir).toBe('/c')
    expect(config.forges[0]?.hookSecrets).toEqual(['s3cret'])
  })

  it('ignores PROCTOR_ variables that are not configuration keys', () => {
    const config = parseConfig(
      {},
      { env: { PROCTOR_HOME: '/x', PROCTOR_GIT_ROOT: '/y' }, baseDir: '/' },
    )
    expect(config).not.toHaveProperty('home')
    expect(config).not.toHaveProperty('gitRoot')
  })

  it('names the missing environment variable', () => {
    expect(() =>
      parseConfig({ api: { tokens: [{ name: 'a', token: '${NOPE}' }] } }, { env: {} }),
    ).toThrow(/NOPE is not set/)
  })

  it('names the field that is wrong', () => {
    expect(() => parseConfig({ server: { port: 'many' } }, { env: {} })).toThrow(/server\.port/)
  })
})
