/**
 * JSON Schema of a listener profile (sip-profiles/*.json). One schema,
 * validated once at start-up; a bad profile stops the server with a message
 * naming the file and the field.
 */
export const PROFILE_SCHEMA = {
  $id: 'https://dialplane.invalid/schemas/sip-profile.json',
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$', description: 'Profile name' },
    bind: { type: 'string', minLength: 1, description: 'Address the listeners bind to' },
    advertise: { type: 'string', minLength: 1, description: 'Address put in Via and Record-Route (defaults to bind, or the first non-loopback IPv4 when bind is 0.0.0.0)' },
    udpPort: { type: 'integer', minimum: 0, maximum: 65535 },
    tcpPort: { type: 'integer', minimum: 0, maximum: 65535 },
    wsPort: { type: 'integer', minimum: 0, maximum: 65535 },
    realm: { type: 'string', pattern: '^[A-Za-z0-9.-]{1,253}$', description: 'Digest realm and registrar domain' },
    maxMessageSize: { type: 'integer', minimum: 1500, maximum: 1048576 },
    tcpIdleTimeoutMs: { type: 'integer', minimum: 1000 },
    timers: {
      type: 'object',
      additionalProperties: false,
      properties: {
        t1: { type: 'integer', minimum: 50, maximum: 10000 },
        t2: { type: 'integer', minimum: 500, maximum: 60000 },
        t4: { type: 'integer', minimum: 500, maximum: 60000 },
        timerC: { type: 'integer', minimum: 180000, maximum: 3600000, description: 'Proxy INVITE timer C (RFC 3261 §16.6: larger than 3 minutes)' },
      },
    },
    digestAlgorithms: {
      type: 'array', minItems: 1, uniqueItems: true, items: { enum: ['MD5', 'SHA-256'] },
      description: 'Digest challenges offered, in order (RFC 8760). Default ["MD5"]: SIPp answers only the first challenge, SIP.js 0.21 only the last, Debian baresip 1.0 fails on any non-MD5 one, and all of them know only MD5. Add SHA-256 where every client handles several challenges.',
    },
    trustedSources: {
      type: 'array',
      items: { type: 'string', pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$' },
      description: 'Carrier trunk source addresses/CIDRs whose requests are not challenged',
    },
    registrar: {
      type: 'object',
      additionalProperties: false,
      properties: {
        defaultExpires: { type: 'integer', minimum: 1 },
        minExpires: { type: 'integer', minimum: 1 },
        maxExpires: { type: 'integer', minimum: 1 },
        maxContacts: { type: 'integer', minimum: 1, maximum: 100 },
      },
    },
  },
} as const;

export interface SipProfile {
  name: string;
  bind: string;
  advertise: string;
  udpPort: number;
  tcpPort: number;
  wsPort: number;
  realm: string;
  maxMessageSize: number;
  tcpIdleTimeoutMs: number;
  timers: { t1: number; t2: number; t4: number; timerC: number };
  digestAlgorithms: Array<'MD5' | 'SHA-256'>;
  trustedSources: string[];
  registrar: { defaultExpires: number; minExpires: number; maxExpires: number; maxContacts: number };
}
