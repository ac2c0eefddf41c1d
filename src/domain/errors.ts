/**
 * One base error with a string code and a cause. Subclasses exist only where they change
 * what the caller does.
 */
export class ProctorError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** A request the caller must fix: maps to a 4xx answer. */
export class BadRequestError extends ProctorError {
  readonly status: number

  constructor(message: string, status = 400, code = 'bad_request') {
    super(code, message)
    this.status = status
  }
}

/**
 * The submission failed for a reason it carries; retrying the job will not help.
 * `code` is a reason code from domain/reasons.ts.
 */
export class SubmissionFailure extends ProctorError {
  readonly log: string | undefined

  constructor(
    code: import('./reasons.ts').ReasonCode,
    message: string,
    options?: { cause?: unknown; log?: string },
  ) {
    super(code, message, options)
    this.log = options?.log
  }
}

/** proctor's own trouble (engine down, registry unreachable): retried, and refunded at the end. */
export class InfrastructureError extends ProctorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('infrastructure', message, options)
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
