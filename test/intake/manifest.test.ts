import { readFileSync } from 'node:fs'
import { symlink, writeFile } from 'node:fs/promises'
import path from 'node:path'

import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'

import type { ForgeConfig } from '../../src/config/proctor-config.ts'
import { inspectCommit, type ManifestResult } from '../../src/intake/manifest.ts'
import { Mirror } from '../../src/intake/mirror.ts'
import { createProject, type FileContent } from '../support/git-server.ts'
import {
  createTestContext,
  removeProjectAndNamespace,
  uniqueNamespace,
  type TestContext,
} from './support/context.ts'

const MANIFESTS = path.resolve(import.meta.dirname, 'fixtures/manifests')
const shared = (name: string) => readFileSync(path.join(MANIFESTS, name), 'utf8')

/** Any valid manifest: only `ok` is checked. */
const VALID = { ok: true as const, any: true as const }

interface ManifestCase {
  name: string
  files: Record<string, FileContent>
  /** Makes crowdai.json a symbolic link to this path instead. */
  symlinkTo?: string
  /** Writes crowdai.json as these exact bytes. */
  raw?: Buffer
  expected: ManifestResult | { ok: false; code: string; message: RegExp } | typeof VALID
}

const CASES: ManifestCase[] = [
  {
    name: 'reads a valid manifest and keeps unknown keys verbatim',
    files: {
      'crowdai.json': JSON.stringify({
        challenge_id: 'flower-classification',
        authors: ['alice', 'Bob'],
        description: 'random forest',
        debug: false,
        model: { trees: 200 },
        __proto__: 'kept',
      }),
    },
    expected: {
      ok: true,
      manifest: {
        challengeId: 'flower-classification',
        authors: ['alice', 'Bob'],
        description: 'random forest',
        debug: false,
        extra: { model: { trees: 200 } },
      },
    },
  },
  {
    name: 'accepts a UTF-8 byte-order mark (shared fixture)',
    files: { 'crowdai.json': shared('utf8-bom.json') },
    expected: VALID,
  },
  {
    name: 'explains single quotes with line and column (shared fixture)',
    files: { 'crowdai.json': shared('single-quotes.json') },
    expected: {
      ok: false,
      code: 'manifest_invalid',
      message: /line 3, column 18: JSON strings use double quotes/,
    },
  },
  {
    name: 'explains a trailing comma with line and column (shared fixture)',
    files: { 'crowdai.json': shared('trailing-comma.json') },
    expected: {
      ok: false,
      code: 'manifest_invalid',
      message: /line 3, column 29: a trailing comma is not allowed in JSON/,
    },
  },
  {
    name: 'refuses a top-level array (shared fixture)',
    files: { 'crowdai.json': shared('toplevel-array.json') },
    expected: {
      ok: false,
      code: 'manifest_invalid',
      message: /must hold a JSON object .* not an array/,
    },
  },
  {
    name: 'refuses null (shared fixture)',
    files: { 'crowdai.json': shared('null.json') },
    expected: { ok: false, code: 'manifest_invalid', message: /not null/ },
  },
  {
    name: 'requires challenge_id',
    files: { 'crowdai.json': '{"authors": ["alice"]}' },
    expected: { ok: false, code: 'manifest_invalid', message: /challenge_id is required/ },
  },
  {
    name: 'requires challenge_id to be a string',
    files: { 'crowdai.json': '{"challenge_id": 7}' },
    expected: {
      ok: false,
      code: 'manifest_invalid',
      message: /challenge_id must be a string, not a number/,
    },
  },
  {
    name: 'requires authors to be strings',
    files: { 'crowdai.json': '{"challenge_id": "x", "authors": ["alice", 3]}' },
    expected: {
      ok: false,
      code: 'manifest_invalid',
      message: /authors\.1 must be a string, not a number/,
    },
  },
  {
    name: 'requires debug to be a boolean',
    files: { 'crowdai.json': '{"challenge_id": "x", "debug": "yes"}' },
    expected: {
      ok: false,
      code: 'manifest_invalid',
      message: /debug must be a boolean, not a string/,
    },
  },
  {
    name: 'refuses duplicate keys instead of picking one',
    files: { 'crowdai.json': '{"challenge_id": "a",\n "challenge_id": "b"}' },
    expected: {
      ok: false,
      code: 'manifest_invalid',
      message: /line 2, column 2: "challenge_id" appears twice/,
    },
  },
  {
    name: 'names Python literals',
    files: { 'crowdai.json': '{"challenge_id": "a", "debug": True}' },
    expected: {
      ok: false,
      code: 'manifest_invalid',
      message: /True is not JSON: write true, false or null/,
    },
  },
  {
    name: 'refuses comments',
    files: { 'crowdai.json': '{\n  // my entry\n  "challenge_id": "a"\n}' },
    expected: {
      ok: false,
      code: 'manifest_invalid',
      message: /line 2, column 3: JSON does not allow comments/,
    },
  },
  {
    name: 'refuses an empty file',
    files: { 'crowdai.json': '' },
    expected: { ok: false, code: 'manifest_invalid', message: /the file is empty/ },
  },
  {
    name: 'accepts non-ASCII UTF-8 text',
    files: { 'crowdai.json': '{"challenge_id": "a", "description": "caf\u00e9 \u{1f33c}"}' },
    expected: VALID,
  },
  {
    name: 'refuses text that is not UTF-8',
    files: {},
    raw: Buffer.from('{"challenge_id": "a", "description": "caf\xe9"}', 'latin1'),
    expected: { ok: false, code: 'manifest_invalid', message: /it is not UTF-8 text/ },
  },
  {
    name: 'refuses UTF-16',
    files: {},
    raw: Buffer.concat([
      Buffer.from([0xff, 0xfe]),
      Buffer.from('{"challenge_id": "a"}', 'utf16le'),
    ]),
    expected: { ok: false, code: 'manifest_invalid', message: /saved as UTF-16; save it as UTF-8/ },
  },
  {
    name: 'refuses a file over 64 KiB before reading it',
    files: {
      'crowdai.json': JSON.stringify({ challenge_id: 'a', description: 'x'.repeat(70_000) }),
    },
    expected: { ok: false, code: 'manifest_invalid', message: /is \d+ bytes; the limit is 65536/ },
  },
  {
    name: 'says a missing file is not found at the root of the tag',
    files: { 'README.md': 'no manifest here' },
    expected: {
      ok: false,
      code: 'manifest_missing',
      message: /^crowdai\.json not found at the repository root of tag v1$/,
    },
  },
  {
    name: 'says a directory named crowdai.json is not the file',
    files: { 'crowdai.json/inner.json': '{}' },
    expected: {
      ok: false,
      code: 'manifest_missing',
      message: /not found .* tag v1 \(it is a directory\)/,
    },
  },
  {
    name: 'does not look into subfolders',
    files: { 'sub/crowdai.json': '{"challenge_id": "a"}' },
    expected: { ok: false, code: 'manifest_missing', message: /not found at the repository root/ },
  },
  {
    name: 'points out a name that differs only in case',
    files: { 'CrowdAI.json': '{"challenge_id": "a"}' },
    expected: {
      ok: false,
      code: 'manifest_missing',
      message: /found CrowdAI\.json; the name is case-sensitive/,
    },
  },
  {
    name: 'refuses a symbolic link',
    files: { 'real.json': '{"challenge_id": "a"}' },
    symlinkTo: 'real.json',
    expected: {
      ok: false,
      code: 'manifest_invalid',
      message: /is a symbolic link; it must be a regular file/,
    },
  },
]

describe('crowdai.json read from real repositories', () => {
  let t: TestContext
  let forge: ForgeConfig

  beforeAll(async () => {
    t = await createTestContext()
    forge = t.ctx.config.forges[0] as ForgeConfig
  })

  afterAll(async () => {
    await t.close()
  })

  it.each(CASES)('$name', async (manifestCase) => {
    const projectPath = `${uniqueNamespace('m')}/flower-classification`
    const project = await createProject(projectPath, { 'README.md': 'x' })
    onTestFinished(() => removeProjectAndNamespace(project))
    if (manifestCase.symlinkTo) {
      await symlink(manifestCase.symlinkTo, path.join(project.workDir, 'crowdai.json'))
    }
    if (manifestCase.raw)
      await writeFile(path.join(project.workDir, 'crowdai.json'), manifestCase.raw)
    await project.commit(manifestCase.files, 'manifest')
    const push = await project.pushTag('v1')
    const mirror = new Mirror(t.ctx.config, forge, projectPath)
    await mirror.fetch()

    const inspection = await inspectCommit(mirror, push.after, 'v1')
    if (!inspection.found) throw new Error('the mirror lacks the pushed commit')
    expect(inspection.commit).toBe(push.commitSha)
    const result = inspection.manifest

    if (manifestCase.expected === VALID) expect(result.ok).toBe(true)
    else if (
      'message' in manifestCase.expected &&
      manifestCase.expected.message instanceof RegExp
    ) {
      expect(result).toMatchObject({ ok: false, code: manifestCase.expected.code })
      expect(result.ok ? '' : result.message).toMatch(manifestCase.expected.message)
    } else expect(result).toEqual(manifestCase.expected)
  })
})
