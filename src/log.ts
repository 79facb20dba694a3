import { type Logger, pino } from 'pino'

export type { Logger }

/** Paths pino blanks before a line is written: secrets and tokens never reach the logs. */
export const REDACT_PATHS = [
  '*.password',
  '*.secret',
  '*.client_secret',
  '*.clientSecret',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.assertion',
  'req.headers.authorization',
  'req.headers["authorization-app-api"]',
  'req.headers["x-api-secret"]',
  'req.headers.cookie',
]

/** Root logger: JSON to stdout, pretty only in development. Built once in main.ts. */
export function createLogger(opts: { level: string; pretty?: boolean }): Logger {
  return pino({
    level: opts.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(opts.pretty ? { transport: { target: 'pino-pretty', options: { colorize: true } } } : {}),
  })
}

/** A logger that drops everything, for tests and tools. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
