/**
 * The logging surface the SIP layer needs. pino loggers satisfy it; the SIP
 * layer does not import pino (DESIGN.md §1 rule 1), main.ts passes one in.
 */
export interface Logger {
  child(bindings: Record<string, unknown>): Logger;
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const nullLogger: Logger = {
  child: () => nullLogger,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
