import { describe, expect, it } from 'vitest'

import { imageRepository, imageTag, REPOSITORY_COMPONENT, TAG } from './image-name.ts'

const SHA = 'a94e3b1f0c2d4e6f8a0b2c4d6e8f0a1b3c5d7e9f'

function expectValidRepository(name: string): void {
  expect(name.length).toBeLessThanOrEqual(200)
  for (const component of name.split('/')) {
    expect(component).toMatch(REPOSITORY_COMPONENT)
  }
}

describe('imageRepository', () => {
  it('keeps a clean project path as it is', () => {
    expect(imageRepository('proctor', 'mnist-2026', 'ml-course/alice-submission')).toBe(
      'proctor/mnist-2026/ml-course/alice-submission',
    )
  })

  it('lowercases and replaces characters Docker refuses', () => {
    const name = imageRepository('proctor', 'mnist', 'ML Course/Alice Submission!')
    expect(name).toBe('proctor/mnist/ml-course/alice-submission')
  })

  it.each([
    ['../../etc/passwd', 'proctor/c/etc/passwd'],
    ['Group/..hidden', 'proctor/c/group/hidden'],
    ['a..b/c___d/e._f', 'proctor/c/a-b/c-d/e-f'],
    ['a__b/c_d/e.f/g---h', 'proctor/c/a__b/c_d/e.f/g---h'],
    ['-leading/trailing-/.dot.', 'proctor/c/leading/trailing/dot'],
    ['//double//slashes//', 'proctor/c/double/slashes'],
    ['Ünïcödé/Ωmega/東京', 'proctor/c/unicode/mega'],
    ['', 'proctor/c/project'],
    ['---/___', 'proctor/c/project'],
    ['name:tag@sha256:abc', 'proctor/c/name-tag-sha256-abc'],
  ])('sanitizes the hostile path %j', (project, expected) => {
    const name = imageRepository('proctor', 'c', project)
    expect(name).toBe(expected)
    expectValidRepository(name)
  })

  it('shortens a very long component and keeps two long names apart', () => {
    const a = imageRepository('proctor', 'c', `group/${'a'.repeat(300)}`)
    const b = imageRepository('proctor', 'c', `group/${'a'.repeat(299)}b`)
    expectValidRepository(a)
    expectValidRepository(b)
    expect(a).not.toBe(b)
  })

  it('bounds the total length of a deeply nested path', () => {
    const deep = Array.from({ length: 40 }, (_, i) => `subgroup-number-${i}`).join('/')
    const name = imageRepository('proctor', 'challenge', deep)
    expectValidRepository(name)
    expect(name.startsWith('proctor/challenge/subgroup-number-0-subgroup')).toBe(true)
    expect(imageRepository('proctor', 'challenge', `${deep}/x`)).not.toBe(name)
  })

  it('produces valid names for arbitrary input', () => {
    const alphabet = 'aZ09._-/ :@!~\u00e9\u4e2d\t'
    let seed = 7
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31)
    for (let i = 0; i < 500; i++) {
      const length = next() % 120
      const raw = Array.from({ length }, () => alphabet[next() % alphabet.length]).join('')
      expectValidRepository(imageRepository('proctor', raw, raw))
    }
  })
})

describe('imageTag', () => {
  it('joins the submission id and the short commit', () => {
    expect(imageTag('01J9Z3K7QX', SHA)).toBe('01J9Z3K7QX-a94e3b1f0c2d')
  })

  it('takes a numeric submission id', () => {
    expect(imageTag(731, SHA)).toBe('731-a94e3b1f0c2d')
  })

  it('keeps two submissions apart when their projects sanitize alike', () => {
    const repoA = imageRepository('proctor', 'c', 'team/Foo.Bar')
    const repoB = imageRepository('proctor', 'c', 'team/foo.bar')
    expect(repoA).toBe(repoB)
    expect(`${repoA}:${imageTag('41', SHA)}`).not.toBe(`${repoB}:${imageTag('42', SHA)}`)
  })

  it.each(['a/b', 'a:b', '../x', '-flag', '.hidden', 'x'.repeat(500), 'id with spaces', '東京'])(
    'makes a valid tag from the hostile id %j',
    (id) => {
      const tag = imageTag(id, SHA)
      expect(tag).toMatch(TAG)
      expect(tag.endsWith('-a94e3b1f0c2d')).toBe(true)
    },
  )

  it('keeps ids apart that differ only in characters a tag cannot hold', () => {
    expect(imageTag('a/b', SHA)).not.toBe(imageTag('a:b', SHA))
    expect(imageTag('a/b', SHA)).not.toBe(imageTag('a-b', SHA))
    expect(imageTag('x'.repeat(200), SHA)).not.toBe(imageTag(`${'x'.repeat(199)}y`, SHA))
  })

  it('refuses a commit that is not hex', () => {
    expect(() => imageTag('1', 'HEAD; rm -rf /')).toThrow(/not a hex commit id/)
  })
})
