import pino, { type Logger } from 'pino'

/**
 * proctor's one logger. JSON lines by default (for collectors); `pretty` for a terminal.
 * Secrets never reach it: hook bodies, tokens and credentials are not logged, and the
 * redact paths below catch the fields where they could slip in.
 */
export function createLogger(
  options: { level?: string; pretty?: boolean; destination?: NodeJS.WritableStream } = {},
): Logger {
  const redact = {
    paths: [
      'req.headers.authorization',
      'req.headers["x-gitlab-token"]',
      '*.password',
      '*.token',
      '*.apiToken',
      '*.hookSecrets',
    ],
    censor: '[redacted]',
  }
  if (options.pretty) {
    return pino({
      level: options.level ?? 'info',
      redact,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss.l' },
      },
    })
  }
  return pino({ level: options.level ?? 'info', redact }, options.destination ?? process.stderr)
}
