import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'

import { SubmissionFailure } from '../domain/errors.ts'
import type { PhaseRunResult } from '../runtime/container-runtime.ts'

const MAX_RESULT_BYTES = 1024 * 1024

/** What the grader's scores.json says. */
export interface ScoreResult {
  score: number
  scoreSecondary: number | null
  details: unknown
}

/**
 * Reads what an organizer phase (the grader) decided, by the container contract:
 * - `scores.json` `{ score, score_secondary?, details? }` → the score;
 * - `invalid.json` `{ message }` → the participant's output was rejected (`output_invalid`);
 * - anything else (crash, no file, bad JSON) → `scoring_failed`, the organizer's error.
 * Returns null for an organizer phase that is not a scoring phase and exited cleanly.
 */
export function readPhaseResult(
  phase: string,
  outputDir: string,
  run: PhaseRunResult,
): ScoreResult | null {
  const invalidFile = path.join(outputDir, 'invalid.json')
  if (existsSync(invalidFile)) {
    const message = readJson(invalidFile, phase) as { message?: unknown }
    const text =
      typeof message.message === 'string' ? message.message : 'the grader rejected the predictions'
    throw new SubmissionFailure(
      'output_invalid',
      `the grader rejected your output: ${text.slice(0, 2000)}`,
    )
  }

  if (run.outcome !== 'exited' || run.exitCode !== 0) {
    throw new SubmissionFailure(
      'scoring_failed',
      `the ${phase} phase (the organizers' grader) ${run.outcome === 'exited' ? `exited with code ${run.exitCode}` : run.outcome.replace('_', ' ')}; the organizers have been told and your quota unit was refunded`,
    )
  }

  const scoresFile = path.join(outputDir, 'scores.json')
  if (!existsSync(scoresFile)) return null
  const scores = readJson(scoresFile, phase) as {
    score?: unknown
    score_secondary?: unknown
    details?: unknown
  }
  if (typeof scores.score !== 'number' || !Number.isFinite(scores.score)) {
    throw new SubmissionFailure(
      'scoring_failed',
      `the ${phase} phase wrote scores.json without a numeric "score"; the organizers have been told`,
    )
  }
  const secondary =
    typeof scores.score_secondary === 'number' && Number.isFinite(scores.score_secondary)
      ? scores.score_secondary
      : null
  return { score: scores.score, scoreSecondary: secondary, details: scores.details }
}

function readJson(file: string, phase: string): unknown {
  if (statSync(file).size > MAX_RESULT_BYTES) {
    throw new SubmissionFailure(
      'scoring_failed',
      `the ${phase} phase wrote ${path.basename(file)} over 1 MiB`,
    )
  }
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown
  } catch {
    throw new SubmissionFailure(
      'scoring_failed',
      `the ${phase} phase wrote ${path.basename(file)} that is not JSON; the organizers have been told`,
    )
  }
}
