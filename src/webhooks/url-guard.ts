/**
 * SSRF guard for tenants' webhook URLs.
 *
 * A webhook is a request this server makes to wherever a tenant says. Left
 * unchecked, a tenant could make it POST to 127.0.0.1:8080 (our own admin
 * API), to 169.254.169.254 (a cloud's instance metadata, with credentials),
 * or to anything on the private network behind us. So:
 *
 *   - at registration (admin API), `checkUrl` refuses what is wrong on its
 *     face: another scheme than http/https, user information in the URL, a
 *     literal address in a blocked range, a name like `localhost`. This is
 *     for a clear 400; it cannot be the whole defence, because a name's
 *     addresses can change after it was accepted;
 *   - at each delivery, `resolve` looks the name up (every address, not just
 *     the first) and refuses if ANY of them is blocked: a name answering
 *     with one public and one private address could otherwise win a race
 *     against the check (DNS rebinding). The dispatcher then connects to the
 *     addresses checked here, never to a second lookup's answer.
 *
 * Addresses are compared as numbers, never as text: WHATWG URL already turns
 * `127.1`, `0x7f.1`, `017700000001` and `2130706433` into `127.0.0.1`, and
 * `[::ffff:127.0.0.1]` into `[::ffff:7f00:1]`; an IPv6 address carrying an
 * IPv4 one (mapped, NAT64, 6to4) is judged by the IPv4 address it carries.
 *
 * Operators may allow some private destinations (an on-premises CRM, a test
 * receiver on loopback): `allow` takes CIDRs, single addresses and host
 * names (DIALPLANE_WEBHOOK_ALLOW). An allowed host name skips the address
 * check altogether, so name only hosts whose DNS you control.
 */
import { isIP, isIPv4 } from 'node:net';

/** One answer of a lookup, as dns.lookup({ all: true }) gives it. */
export interface ResolvedAddress {
  address: string;
  family: number;
}

/** dns.promises.lookup(host, { all: true }) or a fake for tests. */
export type HostLookup = (host: string) => Promise<ResolvedAddress[]>;

export type UrlCheck =
  | { ok: true; url: URL; /** Host without IPv6 brackets or a trailing dot, lower case. */ host: string }
  | { ok: false; reason: string };

export type ResolveResult =
  | { ok: true; url: URL; host: string; addresses: ResolvedAddress[] }
  | { ok: false; reason: string };

interface Range {
  family: 4 | 6;
  bits: bigint;
  prefix: number;
  reason: string;
}

export interface Cidr {
  family: 4 | 6;
  bits: bigint;
  prefix: number;
}

const V4_RANGES: ReadonlyArray<[string, string]> = [
  ['0.0.0.0/8', '"this network", 0.0.0.0/8'],
  ['10.0.0.0/8', 'private, RFC 1918'],
  ['100.64.0.0/10', 'shared address space, carrier-grade NAT'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local, incl. cloud metadata'],
  ['172.16.0.0/12', 'private, RFC 1918'],
  ['192.0.0.0/24', 'IETF protocol assignment'],
  ['192.168.0.0/16', 'private, RFC 1918'],
  ['198.18.0.0/15', 'benchmarking, RFC 2544'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved or broadcast'],
];
const V6_RANGES: ReadonlyArray<[string, string]> = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1): no legitimate endpoint uses one.
  ['::/96', 'IPv4-compatible, deprecated'],
  ['fc00::/7', 'unique local, private'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local, deprecated'],
  ['ff00::/8', 'multicast'],
];
/** IPv6 prefixes whose address embeds an IPv4 one: [prefix, bit offset of the IPv4 address from the left]. */
const V4_CARRIERS: ReadonlyArray<[string, number]> = [
  ['::ffff:0:0/96', 96], // IPv4-mapped: what a dual-stack socket connects to as IPv4
  ['64:ff9b::/96', 96], // NAT64 (RFC 6052): the gateway connects to the embedded address
  ['2002::/16', 16], // 6to4: the relay reaches the embedded address
];

const BLOCKED_NAMES = new Set(['localhost', 'localhost.localdomain', 'ip6-localhost', 'ip6-loopback', 'metadata.google.internal']);

const ranges: Range[] = [
  ...V4_RANGES.map(([c, reason]) => ({ ...parseCidr(c), reason })),
  ...V6_RANGES.map(([c, reason]) => ({ ...parseCidr(c), reason })),
];
const carriers = V4_CARRIERS.map(([c, offset]) => ({ ...parseCidr(c), offset }));

/** An IPv4 address (dotted quad, as net.isIPv4 accepts it) as a 32-bit number. */
function v4Value(ip: string): bigint {
  return ip.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

/** An IP address as family and 32/128-bit value; undefined when it is not one. Zone ids (fe80::1%eth0) are ignored. */
export function ipValue(raw: string): { family: 4 | 6; value: bigint } | undefined {
  const ip = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  const bare = ip.includes('%') ? ip.slice(0, ip.indexOf('%')) : ip;
  const family = isIP(bare);
  if (family === 4) return { family: 4, value: v4Value(bare) };
  if (family !== 6) return undefined;
  // A trailing dotted quad (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) is two groups.
  let text = bare;
  const tail = /^(.*:)([0-9.]+)$/.exec(text);
  if (tail !== null && isIPv4(tail[2] as string)) {
    const v = Number(v4Value(tail[2] as string));
    text = `${tail[1] as string}${(v >>> 16).toString(16)}:${(v & 0xffff).toString(16)}`;
  }
  const [head = '', rest] = text.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) return undefined;
  return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

/** `a.b.c.d/n`, `x::/n` or a single address (a /32 or /128). Throws on anything else. */
export function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/');
  const ip = ipValue(slash < 0 ? s : s.slice(0, slash));
  if (ip === undefined) throw new Error(`not an IP address or CIDR: ${s}`);
  const max = ip.family === 4 ? 32 : 128;
  const len = slash < 0 ? String(max) : s.slice(slash + 1);
  const prefix = /^[0-9]{1,3}$/.test(len) ? Number(len) : NaN;
  if (!(prefix >= 0 && prefix <= max)) throw new Error(`bad prefix length: ${s}`);
  return { family: ip.family, bits: ip.value >> BigInt(max - prefix), prefix };
}

function inCidr(c: Cidr, ip: { family: 4 | 6; value: bigint }): boolean {
  if (c.family !== ip.family) return false;
  const max = c.family === 4 ? 32 : 128;
  return ip.value >> BigInt(max - c.prefix) === c.bits;
}

/**
 * Why a webhook must not be delivered to `address`: 'loopback',
 * 'private, RFC 1918'...; undefined for a public unicast address. Anything
 * that is not an IP address at all is refused too (a caller bug, not a
 * destination).
 */
export function classifyAddress(address: string): string | undefined {
  const ip = ipValue(address);
  if (ip === undefined) return 'not an IP address';
  return classifyValue(ip);
}

function classifyValue(ip: { family: 4 | 6; value: bigint }): string | undefined {
  if (ip.family === 6) {
    for (const c of carriers) {
      if (!inCidr(c, ip)) continue;
      const v4 = { family: 4 as const, value: (ip.value >> BigInt(128 - c.offset - 32)) & 0xffffffffn };
      const inner = classifyValue(v4);
      return inner === undefined ? undefined : `${inner}, carried in IPv6`;
    }
  }
  // Most specific first: ::1/128 must win over ::/96.
  let best: Range | undefined;
  for (const r of ranges) if (inCidr(r, ip) && (best === undefined || r.prefix > best.prefix)) best = r;
  return best?.reason;
}

/** Host of a URL as compared: no IPv6 brackets, no trailing dot, lower case. */
export function normaliseHost(hostname: string): string {
  let h = hostname.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  while (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** A name that designates this machine whatever DNS says (RFC 6761 `.localhost` included). */
export function isLocalName(host: string): boolean {
  const h = normaliseHost(host);
  return BLOCKED_NAMES.has(h) || h.endsWith('.localhost');
}

export interface WebhookUrlGuardOptions {
  /** CIDRs, addresses and host names delivered to even though private (DIALPLANE_WEBHOOK_ALLOW). */
  allow?: readonly string[];
  /**
   * This server's own addresses (every interface when bound to a wildcard):
   * refused even when public, so a webhook cannot reach our admin or SIP
   * ports through the public address. An `allow` entry still wins.
   */
  selfAddresses?: readonly string[];
}

/** Splits DIALPLANE_WEBHOOK_ALLOW; throws naming the first entry that is neither a CIDR, an address nor a host name. */
export function parseAllowList(value: string | undefined): string[] {
  if (value === undefined) return [];
  const entries = value.split(',').map((e) => e.trim()).filter((e) => e !== '');
  for (const e of entries) allowEntry(e);
  return entries;
}

function allowEntry(e: string): { cidr: Cidr } | { host: string } {
  if (/^[0-9a-fA-F:.[\]%]+(\/[0-9]+)?$/.test(e) && (e.includes(':') || /^[0-9./]+$/.test(e))) return { cidr: parseCidr(e.replace(/^\[(.*)\]/, '$1')) };
  const host = normaliseHost(e);
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(host)) {
    throw new Error(`"${e}" is neither a CIDR, an IP address nor a host name`);
  }
  return { host };
}

export class WebhookUrlGuard {
  readonly #allowCidrs: Cidr[] = [];
  readonly #allowHosts = new Set<string>();
  readonly #self: Array<{ family: 4 | 6; value: bigint }> = [];

  constructor(options: WebhookUrlGuardOptions = {}) {
    for (const e of options.allow ?? []) {
      const entry = allowEntry(e);
      if ('cidr' in entry) this.#allowCidrs.push(entry.cidr);
      else this.#allowHosts.add(entry.host);
    }
    for (const a of options.selfAddresses ?? []) {
      const ip = ipValue(a);
      if (ip !== undefined) this.#self.push(ip);
    }
  }

  /** Why `address` (reached as `host`) must not receive a webhook; undefined when it may. */
  blockedReason(address: string, host?: string): string | undefined {
    if (host !== undefined && this.#allowHosts.has(normaliseHost(host))) return undefined;
    const ip = ipValue(address);
    if (ip === undefined) return 'not an IP address';
    if (this.#allowCidrs.some((c) => inCidr(c, ip))) return undefined;
    if (this.#self.some((s) => s.family === ip.family && s.value === ip.value)) return "this server's own address";
    return classifyValue(ip);
  }

  /** The registration check: what can be refused without resolving the name. */
  checkUrl(raw: string): UrlCheck {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return { ok: false, reason: 'is not a URL' };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, reason: `scheme ${url.protocol.replace(/:$/, '')} is not allowed (http or https only)` };
    // Credentials in a URL end up in logs and in other people's hands; the signature header authenticates us.
    if (url.username !== '' || url.password !== '') return { ok: false, reason: 'must not contain user information (user:password@)' };
    const host = normaliseHost(url.hostname);
    if (host === '') return { ok: false, reason: 'has no host' };
    if (this.#allowHosts.has(host)) return { ok: true, url, host };
    if (isIP(host) !== 0) {
      const why = this.blockedReason(host);
      return why === undefined ? { ok: true, url, host } : { ok: false, reason: `host ${host} is blocked (${why})` };
    }
    if (isLocalName(host)) return { ok: false, reason: `host ${host} is blocked (names this machine)` };
    return { ok: true, url, host };
  }

  /**
   * The delivery check: the URL's check again (the configuration may predate
   * this guard), then every address of the host. A lookup failure (ENOTFOUND,
   * a DNS timeout) rejects: that is a network error, worth retrying; a
   * refusal is not.
   */
  async resolve(raw: string, lookup: HostLookup): Promise<ResolveResult> {
    const checked = this.checkUrl(raw);
    if (!checked.ok) return checked;
    const { url, host } = checked;
    if (isIP(host) !== 0) return { ok: true, url, host, addresses: [{ address: host, family: isIP(host) }] };
    const addresses = await lookup(host);
    if (addresses.length === 0) throw Object.assign(new Error(`no address for ${host}`), { code: 'ENOTFOUND' });
    for (const a of addresses) {
      const why = this.blockedReason(a.address, host);
      if (why !== undefined) return { ok: false, reason: `host ${host} resolves to ${a.address}, which is blocked (${why})` };
    }
    return { ok: true, url, host, addresses };
  }
}
