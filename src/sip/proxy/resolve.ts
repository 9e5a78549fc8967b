/**
 * Next-hop resolution (RFC 3263, reduced): transport from the URI's
 * transport parameter (sips → TLS), port from the URI or the transport's
 * default, host as an IP literal or through the system resolver (A/AAAA).
 * NAPTR/SRV lookups are not done: carriers and phones here are configured
 * by address.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { TransportName } from '../message/message.js';
import type { SipUri } from '../message/uri.js';
import type { Destination } from '../transaction/types.js';

export function resolveUri(uri: SipUri): Destination | Promise<Destination> | undefined {
  if (!uri.isSip) return undefined;
  const maddr = uri.params.get('maddr');
  const host = maddr ?? uri.hostAddress;
  const t = uri.transport;
  const transport: TransportName = uri.scheme === 'sips' || t === 'tls' ? 'tls' : t === 'tcp' ? 'tcp' : t === 'ws' || t === 'wss' ? 'ws' : 'udp';
  const port = uri.port ?? (transport === 'tls' ? 5061 : 5060);
  if (isIP(host)) return { transport, address: host, port };
  if (host.length === 0) return undefined;
  return lookup(host).then((r) => ({ transport, address: r.address, port }));
}
