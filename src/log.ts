/**
 * The one place loggers are made: pino, with secrets redacted in one list
 * (DESIGN.md §3, pino row).
 */
import { pino, type Logger as PinoLogger } from 'pino';

export const REDACT_PATHS = [
  'password', '*.password', 'ha1Md5', 'ha1Sha256', '*.ha1Md5', '*.ha1Sha256',
  'authorization', '*.authorization', 'headers.authorization', 'proxyAuthorization',
  'token', '*.token', 'adminToken', 'secret', '*.secret', 'redisUrl',
  // Admin API (Fastify request logs, errors carrying a request): credentials and keys.
  'req.headers.authorization', 'req.headers["x-api-key"]', 'headers["x-api-key"]',
];

export function createLogger(level: string): PinoLogger {
  return pino({
    level,
    base: { svc: 'dialplane' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
