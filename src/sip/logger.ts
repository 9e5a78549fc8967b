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
  /** pino's level check; loggers without it are treated as logging everything. */
  isLevelEnabled?(level: string): boolean;
}

export const nullLogger: Logger = {
  child: () => nullLogger,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  isLevelEnabled: () => false,
};

/**
 * A child logger that is only built when a message at an enabled level is
 * logged. Transactions and response contexts are created thousands of times a
 * second and almost never log: a pino child() per object (bindings
 * serialised, redaction set up) measurably cost CPU and memory per call.
 * A class, so that the per-object cost is one small allocation.
 */
export class LazyChildLogger implements Logger {
  private real: Logger | undefined;

  constructor(private readonly parent: Logger, private readonly bindings: Record<string, unknown>) {}

  private get(): Logger {
    return (this.real ??= this.parent.child(this.bindings));
  }

  private enabled(level: string): boolean {
    return this.parent.isLevelEnabled ? this.parent.isLevelEnabled(level) : true;
  }

  child(b: Record<string, unknown>): Logger {
    return this.get().child(b);
  }

  debug(obj: object, msg?: string): void {
    if (this.enabled('debug')) this.get().debug(obj, msg);
  }

  info(obj: object, msg?: string): void {
    if (this.enabled('info')) this.get().info(obj, msg);
  }

  warn(obj: object, msg?: string): void {
    if (this.enabled('warn')) this.get().warn(obj, msg);
  }

  error(obj: object, msg?: string): void {
    if (this.enabled('error')) this.get().error(obj, msg);
  }

  isLevelEnabled(level: string): boolean {
    return this.enabled(level);
  }
}
