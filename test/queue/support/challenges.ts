import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

import { ChallengeCatalog } from '../../../src/challenges/catalog.ts'
import { challengeSchema, type Challenge } from '../../../src/config/challenge.ts'
import { parseConfig, type ProctorConfig } from '../../../src/config/proctor-config.ts'
import { silentLog } from './builders.ts'

/** A challenge on disk (tiny hidden data), with the quota and phases a test sets. */
export function testChallenge(overrides: Record<string, unknown> = {}): Challenge {
  const dir = mkdtempSync(path.join(tmpdir(), 'proctor-challenge-'))
  for (const sub of ['inputs', 'labels']) {
    mkdirSync(path.join(dir, sub))
    writeFileSync(path.join(dir, sub, 'data.csv'), `${sub}\n1\n`)
  }
  const definition = challengeSchema.parse({
    id: 'iris',
    title: 'Iris',
    data: { inputs: 'inputs', labels: 'labels' },
    phases: [{ name: 'predict', image: 'participant' }],
    ...overrides,
  })
  return {
    definition,
    file: path.join(dir, 'challenge.yaml'),
    dir,
    inputsDir: path.join(dir, 'inputs'),
    labelsDir: path.join(dir, 'labels'),
  }
}

export function testCatalog(...challenges: Challenge[]): ChallengeCatalog {
  return new ChallengeCatalog(new Map(challenges.map((c) => [c.definition.id, c])), silentLog)
}

export function testConfig(): ProctorConfig {
  return parseConfig({}, { env: {} })
}
