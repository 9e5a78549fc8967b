/** IPv4/IPv6 CIDR matching for trusted carrier sources. */
import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr { family: 4 | 6; bits: bigint; prefix: number }

function toBig(ip: string): { family: 4 | 6; value: bigint } | undefined {
  if (ip.startsWith('::ffff:') && isIPv4(ip.slice(7))) ip = ip.slice(7);
  if (isIPv4(ip)) {
    const parts = ip.split('.').map(Number);
    return { family: 4, value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
  }
  if (isIPv6(ip)) {
    const [head = '', tail = ''] = ip.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    if (groups.length !== 8) return undefined;
    return { family: 6, value: groups.reduce((acc: bigint, g: string) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n) };
  }
  return undefined;
}

export function parseCidr(s: string): Cidr {
  const [addr = '', len] = s.split('/');
  const ip = toBig(addr);
  if (!ip) throw new Error(`not an IP address: ${s}`);
  const max = ip.family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`bad prefix length: ${s}`);
  return { family: ip.family, bits: ip.value >> BigInt(max - prefix), prefix };
}

export function cidrContains(c: Cidr, address: string): boolean {
  const ip = toBig(address);
  if (!ip || ip.family !== c.family) return false;
  const max = c.family === 4 ? 32 : 128;
  return ip.value >> BigInt(max - c.prefix) === c.bits;
}
