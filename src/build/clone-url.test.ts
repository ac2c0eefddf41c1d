import { describe, expect, it } from 'vitest'

import { isSameServer, parseCloneUrl, redact } from './clone-url.ts'

describe('parseCloneUrl', () => {
  it('moves http credentials into an Authorization header', () => {
    const source = parseCloneUrl('https://oauth2:s3cret@gitlab.example.org/ml-course/alice.git')

    expect(source.url).toBe('https://gitlab.example.org/ml-course/alice.git')
    expect(source.url).not.toContain('s3cret')
    expect(source.display).toBe('gitlab.example.org/ml-course/alice.git')
    expect(source.project).toBe('ml-course/alice')
    expect(source.authorization).toBe(`Basic ${Buffer.from('oauth2:s3cret').toString('base64')}`)
  })

  it('treats a lone user in an http URL as a token', () => {
    const source = parseCloneUrl('https://ghp_token@github.com/team/repo.git')

    expect(source.url).toBe('https://github.com/team/repo.git')
    expect(source.authorization).toBe(`Basic ${Buffer.from('ghp_token:').toString('base64')}`)
  })

  it('keeps git:// and scp-like ssh URLs as written', () => {
    expect(parseCloneUrl('git://127.0.0.1:9418/group/p.git')).toMatchObject({
      url: 'git://127.0.0.1:9418/group/p.git',
      scheme: 'git',
      server: '127.0.0.1:9418',
      authorization: undefined,
    })
    expect(parseCloneUrl('git@gitlab.example.org:group/p.git')).toMatchObject({
      url: 'git@gitlab.example.org:group/p.git',
      scheme: 'ssh',
      server: 'gitlab.example.org:22',
      project: 'group/p',
    })
  })

  it('refuses transports proctor does not fetch from', () => {
    expect(() => parseCloneUrl('ext::sh -c touch% /tmp/pwned')).toThrow(
      /does not fetch from|not a git URL/,
    )
    expect(() => parseCloneUrl('--upload-pack=touch /tmp/pwned')).toThrow(/not a git URL/)
  })
})

describe('isSameServer', () => {
  const source = parseCloneUrl('https://token@gitlab.example.org/group/project.git')

  it.each([
    ['../lib.git', true],
    ['./nested/lib.git', true],
    ['https://gitlab.example.org/other/lib.git', true],
    ['https://GITLAB.example.org:443/other/lib.git', true],
    ['https://gitlab.example.org:8443/other/lib.git', false],
    ['http://gitlab.example.org/other/lib.git', false],
    ['git@gitlab.example.org:other/lib.git', false],
    ['https://evil.example.com/lib.git', false],
    ['file:///etc/passwd', false],
    ['/srv/git/lib.git', false],
    ['ext::sh -c id', false],
  ])('%s → %s', (url, expected) => {
    expect(isSameServer(source, url)).toBe(expected)
  })
})

describe('redact', () => {
  it('drops user info from a URL', () => {
    expect(redact('https://user:pw@host/x.git')).toBe('https://host/x.git')
    expect(redact('git://host/x.git')).toBe('git://host/x.git')
  })
})
