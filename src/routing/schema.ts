/**
 * JSON Schemas of the routing documents (DESIGN.md §1 rule 4): one schema
 * per document type, defined once here and used by the admin API, the store
 * and the files in routing-rules/ (tenant.schema.json and friends are
 * generated from these objects and a test fails when they drift).
 *
 * Every document type is a `$defs` entry of the tenant schema, so a single
 * extension or route can be validated on its own (`validateDocument`) with
 * exactly the rules that apply to it inside a whole tenant.
 *
 * Strict: `additionalProperties: false` everywhere, patterns for numbers,
 * ids and times, bounds on sizes and timeouts. What a schema cannot say
 * (references, duplicates, time zones, overlapping ranges) is checked by
 * references.ts.
 */

const ID = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

/** Building blocks shared by the document types. */
const COMMON_DEFS = {
  id: { type: 'string', pattern: ID, description: 'Local identifier: letters, digits, _ . -, at most 64 characters' },
  phoneNumber: {
    type: 'string', pattern: '^\\+?[0-9]{2,20}$',
    description: 'A phone number in any form the numbering plan reads: +8613812345678, 008613812345678, 13812345678, 057188888888, 4008123456, 95588',
  },
  numberPrefix: {
    type: 'string', pattern: '^\\+?[0-9]{1,15}$',
    description: 'An unambiguous number prefix: +86571…, 0571…, 138…, 400…',
  },
  extensionNumber: { type: 'string', pattern: '^[1-9][0-9]{1,5}$', description: 'Extension number, 2-6 digits' },
  shortCode: { type: 'string', pattern: '^[1-9][0-9]{2,5}$', description: 'Group short number, 3-6 digits' },
  areaCode: { type: 'string', pattern: '^(10|2[0-9]|[3-9][0-9]{2})$', description: 'Area code without the trunk prefix 0: 10, 2x or three digits' },
  timeZone: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$', maxLength: 64, description: 'IANA time zone, e.g. Asia/Shanghai' },
  clockTime: { type: 'string', pattern: '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$', description: 'HH:MM, 00:00-24:00' },
  date: { type: 'string', pattern: '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$', description: 'YYYY-MM-DD' },
  weekday: { enum: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] },
  strategy: { enum: ['sequential', 'round-robin', 'random', 'weighted', 'simultaneous'] },
  targetTimeoutMs: { type: 'integer', minimum: 1000, maximum: 600000, description: 'How long one target rings (ms)' },
  overallTimeoutMs: { type: 'integer', minimum: 1000, maximum: 3600000, description: 'Cap on a whole ring step (ms)' },
  sipStatus: { type: 'integer', minimum: 400, maximum: 699, description: 'SIP final failure status' },
  reason: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[^\\r\\n]*$' },
  label: { type: 'string', minLength: 1, maxLength: 128 },
  carrier: { type: 'string', pattern: '^[a-z][a-z0-9-]{1,31}$', description: 'Carrier id, e.g. cmcc, cucc, ctcc, cbn' },
  nextOnFail: {
    description: "'next', 'stop', or the index of a later action of the same rule",
    anyOf: [{ enum: ['next', 'stop'] }, { type: 'integer', minimum: 1, maximum: 15 }],
  },
  onDecline: { enum: ['stop', 'continue'] },
} as const;

const ref = (name: string) => ({ $ref: `#/$defs/${name}` }) as const;
const list = (item: object, maxItems: number, minItems = 0) => ({ type: 'array', items: item, minItems, maxItems }) as const;

const ONE_TARGET_OF = [{ required: ['extension'] }, { required: ['number'] }];

const DOCUMENT_DEFS = {
  numberEntry: {
    type: 'object', additionalProperties: false, required: ['route'],
    properties: {
      number: ref('phoneNumber'),
      prefix: ref('numberPrefix'),
      range: {
        type: 'object', additionalProperties: false, required: ['from', 'to'],
        properties: { from: ref('phoneNumber'), to: ref('phoneNumber') },
      },
      route: ref('id'),
      label: ref('label'),
    },
    oneOf: [{ required: ['number'] }, { required: ['prefix'] }, { required: ['range'] }],
  },
  ringTarget: {
    type: 'object', additionalProperties: false,
    properties: {
      extension: ref('extensionNumber'),
      number: ref('phoneNumber'),
      timeoutMs: ref('targetTimeoutMs'),
      weight: { type: 'integer', minimum: 1, maximum: 1000 },
    },
    oneOf: ONE_TARGET_OF,
  },
  extension: {
    type: 'object', additionalProperties: false, required: ['number', 'sip'],
    properties: {
      number: ref('extensionNumber'),
      name: ref('label'),
      sip: {
        type: 'object', additionalProperties: false, required: ['ha1Md5', 'ha1Sha256'],
        properties: {
          username: { type: 'string', pattern: '^[A-Za-z0-9_.+-]{1,64}$' },
          ha1Md5: { type: 'string', pattern: '^[0-9a-f]{32}$', description: 'hex MD5(username:realm:password)' },
          ha1Sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'hex SHA-256(username:realm:password)' },
        },
      },
      ringTimeoutMs: ref('targetTimeoutMs'),
      alsoRing: {
        type: 'object', additionalProperties: false, required: ['numbers', 'mode'],
        properties: { numbers: list(ref('phoneNumber'), 4, 1), mode: { enum: ['together', 'after'] } },
      },
      outboundCallerId: ref('phoneNumber'),
      voicemail: ref('id'),
      route: ref('id'),
    },
  },
  group: {
    type: 'object', additionalProperties: false, required: ['id', 'strategy', 'members'],
    properties: {
      id: ref('id'),
      name: ref('label'),
      strategy: ref('strategy'),
      members: list(ref('ringTarget'), 200, 1),
      memberTimeoutMs: ref('targetTimeoutMs'),
      overallTimeoutMs: ref('overallTimeoutMs'),
      onDecline: ref('onDecline'),
    },
  },
  shortNumberPlan: {
    type: 'object', additionalProperties: false, required: ['id', 'members'],
    properties: {
      id: ref('id'),
      name: ref('label'),
      members: list({
        type: 'object', additionalProperties: false, required: ['code'],
        properties: { code: ref('shortCode'), extension: ref('extensionNumber'), number: ref('phoneNumber'), name: ref('label') },
        oneOf: ONE_TARGET_OF,
      }, 10000, 1),
    },
  },
  schedule: {
    type: 'object', additionalProperties: false, required: ['id', 'weekly'],
    properties: {
      id: ref('id'),
      timeZone: ref('timeZone'),
      weekly: list({
        type: 'object', additionalProperties: false, required: ['days', 'from', 'to'],
        properties: { days: { ...list(ref('weekday'), 7, 1), uniqueItems: true }, from: ref('clockTime'), to: ref('clockTime') },
      }, 64),
      holidays: list({
        type: 'object', additionalProperties: false, required: ['date'],
        properties: { date: ref('date'), to: ref('date'), name: ref('label') },
      }, 400),
      makeupWorkdays: list({
        type: 'object', additionalProperties: false, required: ['date'],
        properties: { date: ref('date'), as: ref('weekday'), name: ref('label') },
      }, 100),
    },
  },
  blacklist: {
    type: 'object', additionalProperties: false,
    properties: {
      numbers: list(ref('phoneNumber'), 1000000),
      prefixes: list(ref('numberPrefix'), 100000),
      anonymous: { type: 'boolean' },
      status: ref('sipStatus'),
    },
  },
  regionOverride: {
    type: 'object', additionalProperties: false, required: ['prefix', 'province'],
    properties: { prefix: ref('numberPrefix'), province: { type: 'string', minLength: 1, maxLength: 32 }, city: { type: 'string', minLength: 1, maxLength: 32 } },
  },
  inboundTrunk: {
    type: 'object', additionalProperties: false, required: ['id', 'sources'],
    properties: {
      id: ref('id'),
      name: ref('label'),
      sources: list({ type: 'string', pattern: '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$', maxLength: 50 }, 256, 1),
      numbers: list(ref('numberPrefix'), 10000),
      areaCode: ref('areaCode'),
    },
  },
  outboundGateway: {
    type: 'object', additionalProperties: false, required: ['id', 'host'],
    properties: {
      id: ref('id'),
      host: { type: 'string', pattern: '^[A-Za-z0-9.:\\[\\]-]{1,253}$' },
      port: { type: 'integer', minimum: 1, maximum: 65535 },
      transport: { enum: ['udp', 'tcp', 'tls'] },
      priority: { type: 'integer', minimum: 0, maximum: 1000 },
      prefixes: list(ref('numberPrefix'), 10000),
      carriers: { ...list(ref('carrier'), 16), uniqueItems: true },
      numberFormat: { enum: ['e164', 'national', 'digits'] },
      dialPrefix: { type: 'string', pattern: '^[0-9]{1,8}$' },
    },
  },
  ivrMenu: {
    type: 'object', additionalProperties: false, required: ['id', 'prompt', 'route'],
    properties: {
      id: ref('id'),
      prompt: ref('id'),
      maxDigits: { type: 'integer', minimum: 1, maximum: 8 },
      digitTimeoutMs: { type: 'integer', minimum: 1000, maximum: 60000 },
      retries: { type: 'integer', minimum: 0, maximum: 5 },
      extensionDialling: { type: 'boolean' },
      route: ref('id'),
    },
  },
  conditions: {
    type: 'object', additionalProperties: false, minProperties: 1,
    properties: {
      schedule: {
        type: 'object', additionalProperties: false, required: ['id', 'inside'],
        properties: { id: ref('id'), inside: { type: 'boolean' } },
      },
      callerRegion: {
        type: 'object', additionalProperties: false, required: ['in'],
        properties: {
          in: list({
            type: 'object', additionalProperties: false, required: ['province'],
            properties: { province: { type: 'string', minLength: 1, maxLength: 32 }, city: { type: 'string', minLength: 1, maxLength: 32 } },
          }, 500, 1),
          not: { type: 'boolean' },
        },
      },
      callerNumber: ref('numberPatterns'),
      calledNumber: ref('numberPatterns'),
      callerBlacklisted: { type: 'boolean' },
      ivrDigits: { ...list({ type: 'string', pattern: '^[0-9*#]{0,8}$' }, 100, 1), uniqueItems: true },
    },
  },
  numberPatterns: {
    type: 'object', additionalProperties: false, required: ['patterns'],
    properties: {
      patterns: list({ type: 'string', pattern: '^\\+?[0-9X]{0,20}\\*?$', minLength: 1, maxLength: 22, description: 'digits, X = any digit, trailing * = any rest; a leading + matches the E.164 form' }, 1000, 1),
      not: { type: 'boolean' },
    },
  },
  onFail: {
    type: 'object', additionalProperties: false,
    properties: { busy: ref('nextOnFail'), noAnswer: ref('nextOnFail'), unreachable: ref('nextOnFail'), rejected: ref('nextOnFail'), declined: ref('nextOnFail') },
  },
  action: {
    type: 'object', required: ['kind'],
    discriminator: { propertyName: 'kind' },
    oneOf: [
      {
        type: 'object', additionalProperties: false, required: ['kind', 'targets'],
        properties: {
          kind: { const: 'ring' },
          targets: list(ref('ringTarget'), 200, 1),
          strategy: ref('strategy'),
          targetTimeoutMs: ref('targetTimeoutMs'),
          overallTimeoutMs: ref('overallTimeoutMs'),
          onFail: ref('onFail'),
          onDecline: ref('onDecline'),
        },
      },
      {
        type: 'object', additionalProperties: false, required: ['kind', 'group'],
        properties: { kind: { const: 'ringGroup' }, group: ref('id'), overallTimeoutMs: ref('overallTimeoutMs'), onFail: ref('onFail'), onDecline: ref('onDecline') },
      },
      {
        type: 'object', additionalProperties: false, required: ['kind', 'menu'],
        properties: { kind: { const: 'ivr' }, menu: ref('id') },
      },
      {
        type: 'object', additionalProperties: false, required: ['kind', 'prompt'],
        properties: { kind: { const: 'announce' }, prompt: ref('id'), then: { enum: ['hangup', 'next'] } },
      },
      {
        type: 'object', additionalProperties: false, required: ['kind', 'status'],
        properties: { kind: { const: 'reject' }, status: ref('sipStatus'), reason: ref('reason') },
      },
      {
        type: 'object', additionalProperties: false, required: ['kind'],
        properties: { kind: { const: 'forward' }, number: ref('phoneNumber'), route: ref('id'), timeoutMs: ref('targetTimeoutMs'), onFail: ref('onFail') },
        oneOf: [{ required: ['number'] }, { required: ['route'] }],
      },
      {
        type: 'object', additionalProperties: false, required: ['kind', 'box'],
        properties: { kind: { const: 'voicemail' }, box: ref('id') },
      },
    ],
  },
  rule: {
    type: 'object', additionalProperties: false, required: ['id', 'actions'],
    properties: {
      id: ref('id'),
      description: { type: 'string', maxLength: 512 },
      when: ref('conditions'),
      actions: list(ref('action'), 16, 1),
    },
  },
  route: {
    type: 'object', additionalProperties: false, required: ['id', 'rules'],
    properties: { id: ref('id'), name: ref('label'), rules: list(ref('rule'), 1000, 1) },
  },
} as const;

/** The whole-tenant document; every document type above is one of its `$defs`. */
export const TENANT_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://dialplane.invalid/schemas/tenant.json',
  title: 'Dialplane tenant',
  description: 'Everything one enterprise configures: numbers, extensions, groups, short-number plans, schedules, blacklist, trunks, IVR menus and routes. Generated from src/routing/schema.ts; do not edit by hand.',
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: {
    $schema: { type: 'string' },
    id: ref('id'),
    name: ref('label'),
    domain: { type: 'string', pattern: '^[A-Za-z0-9.-]{1,253}$' },
    timeZone: ref('timeZone'),
    areaCode: ref('areaCode'),
    outboundCallerId: ref('phoneNumber'),
    defaults: {
      type: 'object', additionalProperties: false,
      properties: { targetTimeoutMs: ref('targetTimeoutMs'), overallTimeoutMs: ref('overallTimeoutMs') },
    },
    limits: {
      type: 'object', additionalProperties: false,
      properties: {
        maxConcurrentCalls: {
          type: 'integer', minimum: 1, maximum: 100000,
          description: 'Calls of this tenant in progress at once on one node (set up or answered); more get 503 with Retry-After',
        },
      },
    },
    numbers: list(ref('numberEntry'), 100000),
    extensions: list(ref('extension'), 20000),
    groups: list(ref('group'), 5000),
    shortNumberPlans: list(ref('shortNumberPlan'), 100),
    schedules: list(ref('schedule'), 1000),
    blacklist: ref('blacklist'),
    regionOverrides: list(ref('regionOverride'), 10000),
    inboundTrunks: list(ref('inboundTrunk'), 100),
    outboundGateways: list(ref('outboundGateway'), 100),
    ivrMenus: list(ref('ivrMenu'), 1000),
    routes: list(ref('route'), 20000),
    ported: list({
      type: 'object', additionalProperties: false, required: ['number', 'carrier'],
      description: 'Ported mobile numbers (携号转网) this tenant knows of, consulted before the operator\'s table',
      properties: { number: ref('phoneNumber'), carrier: ref('carrier') },
    }, 100000),
  },
  $defs: { ...COMMON_DEFS, ...DOCUMENT_DEFS },
} as const;

/** Data shared by all tenants: the global blacklist and carrier data for portability. */
export const GLOBAL_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://dialplane.invalid/schemas/global.json',
  title: 'Dialplane global routing data',
  description: 'Global blacklist and carrier data (mobile segments, ported numbers). Generated from src/routing/schema.ts; do not edit by hand.',
  type: 'object',
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    blacklist: {
      type: 'object', additionalProperties: false,
      properties: { numbers: list(ref('phoneNumber'), 10000000), prefixes: list(ref('numberPrefix'), 1000000) },
    },
    carriers: {
      type: 'object', additionalProperties: false,
      properties: {
        segments: list({
          type: 'object', additionalProperties: false, required: ['prefix', 'carrier'],
          properties: { prefix: ref('numberPrefix'), carrier: ref('carrier') },
        }, 100000),
        ported: list({
          type: 'object', additionalProperties: false, required: ['number', 'carrier'],
          properties: { number: ref('phoneNumber'), carrier: ref('carrier') },
        }, 50000000),
      },
    },
  },
  $defs: {
    phoneNumber: COMMON_DEFS.phoneNumber,
    numberPrefix: COMMON_DEFS.numberPrefix,
    carrier: COMMON_DEFS.carrier,
  },
} as const;

/**
 * What evaluate() takes (RoutingFacts in facts.ts), for the dry-run API,
 * which receives facts from a person rather than from the executor.
 */
export const FACTS_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://dialplane.invalid/schemas/facts.json',
  title: 'Dialplane routing facts',
  description: 'Input of one routing evaluation. Generated from src/routing/schema.ts; do not edit by hand.',
  type: 'object',
  additionalProperties: false,
  required: ['tenant', 'origin', 'called', 'time', 'seed'],
  properties: {
    tenant: { type: 'string', pattern: ID },
    origin: {
      type: 'object', required: ['kind'],
      discriminator: { propertyName: 'kind' },
      oneOf: [
        { type: 'object', additionalProperties: false, required: ['kind', 'trunk'], properties: { kind: { const: 'trunk' }, trunk: { type: 'string', pattern: ID } } },
        { type: 'object', additionalProperties: false, required: ['kind', 'extension'], properties: { kind: { const: 'extension' }, extension: { type: 'string', pattern: '^[1-9][0-9]{1,5}$' } } },
      ],
    },
    called: { type: 'string', minLength: 1, maxLength: 64 },
    caller: { type: 'string', maxLength: 64 },
    time: { type: 'integer', minimum: 0, maximum: 8640000000000000 },
    callerRegion: {
      type: 'object', additionalProperties: false,
      properties: { province: { type: 'string', maxLength: 32 }, city: { type: 'string', maxLength: 32 } },
    },
    ivr: {
      type: 'object', additionalProperties: false, required: ['menu', 'digits'],
      properties: { menu: { type: 'string', pattern: ID }, digits: { type: 'string', pattern: '^[0-9*#]{0,8}$' } },
    },
    counters: { type: 'object', additionalProperties: { type: 'integer', minimum: 1 }, maxProperties: 64 },
    seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
  },
} as const;

/** Document types of the tenant schema that the admin API and the store validate one by one. */
export const DOCUMENT_TYPES = [
  'numberEntry', 'extension', 'group', 'shortNumberPlan', 'schedule', 'blacklist', 'regionOverride',
  'inboundTrunk', 'outboundGateway', 'ivrMenu', 'route', 'rule', 'action', 'conditions',
] as const;
export type DocumentType = (typeof DOCUMENT_TYPES)[number];

/** The schema files in routing-rules/, by file name, as the exact text they must contain. */
export function schemaFiles(): Record<string, string> {
  const text = (s: object): string => `${JSON.stringify(s, null, 2)}\n`;
  return {
    'tenant.schema.json': text(TENANT_SCHEMA),
    'global.schema.json': text(GLOBAL_SCHEMA),
    'facts.schema.json': text(FACTS_SCHEMA),
  };
}
