/**
 * Longest-prefix match over decimal digit strings, for number blocks (DIDs),
 * blacklist prefixes, region overrides, gateway destinations and mobile
 * segments. A lookup walks at most one node per digit of the key, so its
 * cost depends on the number's length, not on how many entries there are.
 *
 * Two kinds of entries:
 * - open prefixes: every key starting with the prefix;
 * - fixed-length blocks: keys starting with the prefix AND of one exact
 *   length. Ranges (from..to of one length) are cut into such blocks by
 *   `rangeToBlocks`, so a range match is also a prefix match and "longest
 *   prefix wins" covers ranges too. At one node a fixed-length block beats an
 *   open prefix: it says more about the number.
 */

interface Node<T> {
  children: Array<Node<T> | undefined> | undefined;
  open: T | undefined;
  /** Fixed-length blocks ending at this node, by total key length. */
  fixed: Map<number, T> | undefined;
}

export interface TrieMatch<T> {
  value: T;
  /** Digits matched. */
  depth: number;
  kind: 'prefix' | 'block';
}

export class DigitTrie<T> {
  private readonly root: Node<T> = { children: undefined, open: undefined, fixed: undefined };
  private entries = 0;

  get size(): number {
    return this.entries;
  }

  /** Adds an open prefix; returns the value already there, if any (the caller decides whether that is a conflict). */
  addPrefix(prefix: string, value: T): T | undefined {
    const node = this.nodeFor(prefix);
    const existing = node.open;
    if (existing === undefined) {
      node.open = value;
      this.entries++;
    }
    return existing;
  }

  /** Adds a block of keys of exactly `length` digits starting with `prefix`; returns the existing value, if any. */
  addBlock(prefix: string, length: number, value: T): T | undefined {
    if (length < prefix.length) throw new RangeError(`block ${prefix} cannot have length ${length}`);
    const node = this.nodeFor(prefix);
    node.fixed ??= new Map();
    const existing = node.fixed.get(length);
    if (existing === undefined) {
      node.fixed.set(length, value);
      this.entries++;
    }
    return existing;
  }

  /** Replaces a block's value (used when a narrower range takes a block over from a wider one). */
  setBlock(prefix: string, length: number, value: T): void {
    const node = this.nodeFor(prefix);
    node.fixed ??= new Map();
    if (!node.fixed.has(length)) this.entries++;
    node.fixed.set(length, value);
  }

  /** The deepest entry matching `key`, or undefined. `key` must be all digits. */
  longest(key: string): TrieMatch<T> | undefined {
    let node: Node<T> | undefined = this.root;
    let best: TrieMatch<T> | undefined;
    const len = key.length;
    for (let i = 0; ; i++) {
      const fixed = node.fixed?.get(len);
      if (fixed !== undefined) best = { value: fixed, depth: i, kind: 'block' };
      else if (node.open !== undefined) best = { value: node.open, depth: i, kind: 'prefix' };
      if (i === len || node.children === undefined) break;
      const c: number = key.charCodeAt(i) - 48;
      if (c < 0 || c > 9) break;
      node = node.children[c];
      if (node === undefined) break;
    }
    return best;
  }

  /** Whether any entry matches `key` (cheaper than longest when only a yes/no is needed). */
  matches(key: string): boolean {
    return this.longest(key) !== undefined;
  }

  private nodeFor(prefix: string): Node<T> {
    let node = this.root;
    for (let i = 0; i < prefix.length; i++) {
      const c = prefix.charCodeAt(i) - 48;
      if (c < 0 || c > 9) throw new RangeError(`"${prefix}" is not a digit string`);
      node.children ??= new Array<Node<T> | undefined>(10).fill(undefined);
      let next = node.children[c];
      if (next === undefined) {
        next = { children: undefined, open: undefined, fixed: undefined };
        node.children[c] = next;
      }
      node = next;
    }
    return node;
  }
}

/**
 * Cuts the range from..to (digit strings of one length, from ≤ to) into the
 * fewest aligned prefix blocks: 0571888800..0571888999 becomes 05718888,
 * 05718889. Every block is maximal (not part of a larger aligned block inside
 * the range), so a range nested in another always gets blocks at least as
 * deep as the outer range's block covering it. At most 18 blocks per digit.
 */
export function rangeToBlocks(from: string, to: string): string[] {
  if (from.length !== to.length || !/^\d*$/.test(from) || !/^\d*$/.test(to)) throw new RangeError(`range ${from}..${to} needs two digit strings of one length`);
  if (from > to) throw new RangeError(`range ${from}..${to} is reversed`);
  const out: string[] = [];
  split(from, to, out);
  return out;
}

function split(from: string, to: string, out: string[]): void {
  if (from === to) {
    out.push(from);
    return;
  }
  let i = 0;
  while (from[i] === to[i]) i++;
  const common = from.slice(0, i);
  const restLen = from.length - i - 1;
  if (/^0*$/.test(from.slice(i)) && /^9*$/.test(to.slice(i))) {
    out.push(common);
    return;
  }
  const lo = Number(from[i]);
  const hi = Number(to[i]);
  // Lower edge: from .. common+lo+999...
  if (/^0*$/.test(from.slice(i + 1))) out.push(common + String(lo));
  else split(from, common + String(lo) + '9'.repeat(restLen), out);
  // Whole blocks in between.
  for (let d = lo + 1; d < hi; d++) out.push(common + String(d));
  // Upper edge: common+hi+000... .. to
  if (/^9*$/.test(to.slice(i + 1))) out.push(common + String(hi));
  else split(common + String(hi) + '0'.repeat(restLen), to, out);
}
