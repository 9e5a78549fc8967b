/**
 * Parameters of a Via, a name-addr or a URI (`;name=value` lists, RFC 3261
 * §7.3.1, §19.1.1, §20): names lower-cased (parameter names are
 * case-insensitive), values as written, `null` for a parameter without a
 * value, in the order written so that a proxy forwards them unchanged.
 *
 * A flat [name, value, name, value...] array rather than a Map: a message
 * carries a handful of parameters per element and a call parses some 35
 * such lists (every Via, Request-URI, From, To, Route, Contact...), where a
 * Map's hash table cost three times the bytes and its own lookups. A list
 * without parameters is the shared EMPTY_PARAMS.
 */
export class Params implements Iterable<[string, string | null]> {
  /** name0, value0, name1, value1... Never mutated once the Params is built. */
  private readonly items: ReadonlyArray<string | null>;

  /** `items` is taken over, not copied: [name, value, ...], names lower-case and distinct. */
  constructor(items: ReadonlyArray<string | null> = []) {
    this.items = items;
  }

  get size(): number {
    return this.items.length >> 1;
  }

  /** The value; null for a parameter without one; undefined when absent. `name` must be lower-case. */
  get(name: string): string | null | undefined {
    const it = this.items;
    for (let i = 0; i < it.length; i += 2) if (it[i] === name) return it[i + 1] as string | null;
    return undefined;
  }

  has(name: string): boolean {
    const it = this.items;
    for (let i = 0; i < it.length; i += 2) if (it[i] === name) return true;
    return false;
  }

  /** A copy with `name` set to `value`: in place when present, else appended. */
  with(name: string, value: string | null): Params {
    const it = this.items.slice();
    for (let i = 0; i < it.length; i += 2) {
      if (it[i] === name) {
        it[i + 1] = value;
        return new Params(it);
      }
    }
    it.push(name, value);
    return new Params(it);
  }

  *[Symbol.iterator](): Iterator<[string, string | null]> {
    const it = this.items;
    for (let i = 0; i < it.length; i += 2) yield [it[i] as string, it[i + 1] as string | null];
  }

  /** `;name=value;flag...` as it goes on the wire; '' when empty. */
  toString(): string {
    const it = this.items;
    let s = '';
    for (let i = 0; i < it.length; i += 2) {
      const v = it[i + 1];
      s += v === null ? `;${it[i] as string}` : `;${it[i] as string}=${v as string}`;
    }
    return s;
  }
}

export const EMPTY_PARAMS = new Params([]);
