/** A Logger that keeps every entry with the bindings of the child that wrote it. */
import type { Logger } from '../../src/sip/logger.js';

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  bindings: Record<string, unknown>;
  obj: object;
  msg: string | undefined;
}

export class RecordingLogger implements Logger {
  constructor(
    readonly entries: LogEntry[] = [],
    private readonly bindings: Record<string, unknown> = {},
  ) {}

  child(bindings: Record<string, unknown>): Logger {
    return new RecordingLogger(this.entries, { ...this.bindings, ...bindings });
  }

  debug(obj: object, msg?: string): void { this.entries.push({ level: 'debug', bindings: this.bindings, obj, msg }); }
  info(obj: object, msg?: string): void { this.entries.push({ level: 'info', bindings: this.bindings, obj, msg }); }
  warn(obj: object, msg?: string): void { this.entries.push({ level: 'warn', bindings: this.bindings, obj, msg }); }
  error(obj: object, msg?: string): void { this.entries.push({ level: 'error', bindings: this.bindings, obj, msg }); }

  at(level: LogEntry['level']): LogEntry[] {
    return this.entries.filter((e) => e.level === level);
  }
}
