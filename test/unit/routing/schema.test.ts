/**
 * JSON Schema validation: every error names the field (JSON Pointer), the
 * noise of oneOf/anyOf branches is folded into one message, each document
 * type validates on its own, and the TypeScript model stays in step with
 * the schema.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileTenant } from '../../../src/routing/compile.js';
import { RoutingError, type ValidationIssue } from '../../../src/routing/errors.js';
import type { TenantDocument } from '../../../src/routing/model.js';
import { DOCUMENT_TYPES, schemaFiles, TENANT_SCHEMA } from '../../../src/routing/schema.js';
import { validateDocument, validateFacts, validateGlobal, validateTenant } from '../../../src/routing/validate.js';
import { ext, facts, SIP, tenantDoc } from './fixtures.js';

function issuesOf(doc: unknown): ValidationIssue[] {
  const r = validateTenant(doc);
  return r.ok ? [] : r.issues;
}

/** Applies `edit` to a fresh valid tenant document. */
function edited(edit: (d: Record<string, unknown> & TenantDocument) => void): unknown {
  const d = structuredClone(tenantDoc()) as Record<string, unknown> & TenantDocument;
  edit(d);
  return d;
}

const RULE0 = '/routes/0/rules/0';

const CASES: Array<{ name: string; doc: unknown; path: string; message: RegExp }> = [
  { name: 'unknown top-level field', doc: edited((d) => { d.colour = 'red'; }), path: '', message: /unknown property "colour"/ },
  { name: 'missing tenant id', doc: edited((d) => { delete (d as Partial<TenantDocument>).id; }), path: '/id', message: /is required/ },
  { name: 'tenant id with a space', doc: edited((d) => { d.id = 'a b'; }), path: '/id', message: /must match pattern/ },
  { name: 'extension number not digits', doc: edited((d) => { d.extensions = [ext('abc')]; }), path: '/extensions/0/number', message: /Extension number, 2-6 digits/ },
  { name: 'extension without credentials', doc: edited((d) => { d.extensions = [{ number: '1001' } as never]; }), path: '/extensions/0/sip', message: /is required/ },
  { name: 'HA1 of the wrong length', doc: edited((d) => { d.extensions = [{ number: '1001', sip: { ...SIP, ha1Md5: 'abc' } }]; }), path: '/extensions/0/sip/ha1Md5', message: /MD5/ },
  { name: 'number entry with nothing', doc: edited((d) => { d.numbers = [{ route: 'main' }]; }), path: '/numbers/0', message: /must have one of: number, prefix, range/ },
  { name: 'number entry with two forms', doc: edited((d) => { d.numbers = [{ number: '4008123456', prefix: '400', route: 'main' }]; }), path: '/numbers/0', message: /must have only one of: number, prefix, range/ },
  { name: 'number with letters', doc: edited((d) => { d.numbers = [{ number: '400-CALL-ME', route: 'main' }]; }), path: '/numbers/0/number', message: /phone number/ },
  { name: 'unknown action kind', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', actions: [{ kind: 'dance' } as never] }] }]; }), path: `${RULE0}/actions/0/kind`, message: /"dance" is not one of: ring, ringGroup, ivr, announce, reject, forward, voicemail/ },
  { name: 'ring without targets', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', actions: [{ kind: 'ring' } as never] }] }]; }), path: `${RULE0}/actions/0/targets`, message: /is required/ },
  { name: 'target with extension and number', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', actions: [{ kind: 'ring', targets: [{ extension: '1001', number: '13812345678' }] }] }] }]; }), path: `${RULE0}/actions/0/targets/0`, message: /only one of: extension, number/ },
  { name: 'reject with a success status', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', actions: [{ kind: 'reject', status: 200 }] }] }]; }), path: `${RULE0}/actions/0/status`, message: />= 400/ },
  { name: 'forward with neither number nor route', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', actions: [{ kind: 'forward' }] }] }]; }), path: `${RULE0}/actions/0`, message: /must have one of: number, route/ },
  { name: 'onFail with a word', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', actions: [{ kind: 'ring', targets: [{ extension: '1001' }], onFail: { busy: 'later' as never } }] }] }]; }), path: `${RULE0}/actions/0/onFail/busy`, message: /'next', 'stop', or the index of a later action/ },
  { name: 'unknown field in a rule', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', whenn: {}, actions: [{ kind: 'voicemail', box: 'x' }] } as never] }]; }), path: RULE0, message: /unknown property "whenn"/ },
  { name: 'empty conditions', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', when: {}, actions: [{ kind: 'voicemail', box: 'x' }] }] }]; }), path: `${RULE0}/when`, message: /fewer than 1 properties/ },
  { name: 'region list empty', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', when: { callerRegion: { in: [] } }, actions: [{ kind: 'voicemail', box: 'x' }] }] }]; }), path: `${RULE0}/when/callerRegion/in`, message: /fewer than 1 items/ },
  { name: 'caller pattern with a star inside', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', when: { callerNumber: { patterns: ['13*8'] } }, actions: [{ kind: 'voicemail', box: 'x' }] }] }]; }), path: `${RULE0}/when/callerNumber/patterns/0`, message: /trailing \* = any rest/ },
  { name: 'target timeout too short', doc: edited((d) => { d.routes = [{ id: 'main', rules: [{ id: 'r', actions: [{ kind: 'ring', targets: [{ extension: '1001' }], targetTimeoutMs: 10 }] }] }]; }), path: `${RULE0}/actions/0/targetTimeoutMs`, message: />= 1000/ },
  { name: 'window hour 25', doc: edited((d) => { d.schedules = [{ id: 's', weekly: [{ days: ['mon'], from: '25:00', to: '26:00' }] }]; }), path: '/schedules/0/weekly/0/from', message: /HH:MM/ },
  { name: 'weekday spelled out', doc: edited((d) => { d.schedules = [{ id: 's', weekly: [{ days: ['monday' as never], from: '09:00', to: '18:00' }] }]; }), path: '/schedules/0/weekly/0/days/0', message: /must be one of: "mon", "tue"/ },
  { name: 'strategy misspelt', doc: edited((d) => { d.groups = [{ id: 'g', strategy: 'roundrobin' as never, members: [{ extension: '1001' }] }]; }), path: '/groups/0/strategy', message: /"round-robin"/ },
  { name: 'short code of two digits', doc: edited((d) => { d.shortNumberPlans = [{ id: 'p', members: [{ code: '12', extension: '1001' }] }]; }), path: '/shortNumberPlans/0/members/0/code', message: /3-6 digits/ },
  { name: 'area code with the trunk 0', doc: edited((d) => { d.areaCode = '0571'; }), path: '/areaCode', message: /without the trunk prefix 0/ },
  { name: 'gateway transport', doc: edited((d) => { d.outboundGateways = [{ id: 'gw', host: 'h', transport: 'sctp' as never }]; }), path: '/outboundGateways/0/transport', message: /"udp", "tcp", "tls"/ },
];

t.test('schema errors name the field', async (t) => {
  for (const c of CASES) {
    const issues = issuesOf(c.doc);
    const hit = issues.find((i) => i.path === c.path && c.message.test(i.message));
    t.ok(hit, `${c.name}: ${c.path} ${String(c.message)}; got ${JSON.stringify(issues)}`);
    t.ok(issues.every((i) => i.code === 'DP_ROUTE_SCHEMA'), `${c.name}: schema issues only`);
  }
});

t.test('oneOf branch noise is folded: one issue per problem', async (t) => {
  const issues = issuesOf(edited((d) => { d.numbers = [{ route: 'main' }]; }));
  t.equal(issues.length, 1, JSON.stringify(issues));
});

t.test('all problems are reported at once', async (t) => {
  const issues = issuesOf(edited((d) => {
    d.colour = 'red';
    d.extensions = [ext('abc')];
    d.numbers = [{ route: 'main' }];
  }));
  t.ok(issues.length >= 3, JSON.stringify(issues));
});

t.test('each document type validates on its own, with paths relative to it', async (t) => {
  t.same(validateDocument('extension', ext('1001')), { ok: true, value: ext('1001') });
  const bad = validateDocument('extension', { number: '1001', sip: { ...SIP }, alsoRing: { numbers: [], mode: 'later' } });
  t.notOk(bad.ok);
  if (!bad.ok) {
    t.ok(bad.issues.some((i) => i.path === '/alsoRing/numbers'), JSON.stringify(bad.issues));
    t.ok(bad.issues.some((i) => i.path === '/alsoRing/mode'), JSON.stringify(bad.issues));
  }
  const fwd = validateDocument('action', { kind: 'forward' });
  t.notOk(fwd.ok);
  if (!fwd.ok) t.same(fwd.issues.map((i) => [i.path, i.message]), [['', 'must have one of: number, route']]);
  t.ok(validateDocument('schedule', { id: 's', weekly: [{ days: ['sat', 'sun'], from: '10:00', to: '16:00' }] }).ok);
  for (const type of DOCUMENT_TYPES) t.ok(TENANT_SCHEMA.$defs[type], `${type} is a $defs entry of the tenant schema`);
});

t.test('facts and global documents have schemas too', async (t) => {
  t.ok(validateFacts(facts()).ok, 'the fixture facts are valid');
  const bad = validateFacts({ ...facts(), origin: { kind: 'phone' }, time: 'now' });
  t.notOk(bad.ok);
  if (!bad.ok) {
    t.ok(bad.issues.some((i) => i.path === '/origin/kind'), JSON.stringify(bad.issues));
    t.ok(bad.issues.some((i) => i.path === '/time'), JSON.stringify(bad.issues));
  }
  t.ok(validateGlobal({ blacklist: { prefixes: ['+861700'] }, carriers: { segments: [{ prefix: '138', carrier: 'cmcc' }] } }).ok);
  const g = validateGlobal({ carriers: { ported: [{ number: '13812345678', carrier: 'China Mobile' }] } });
  t.notOk(g.ok);
  if (!g.ok) t.equal(g.issues[0]?.path, '/carriers/ported/0/carrier');
  const ported = validateGlobal({ carriers: { ported: [{ number: '057188888888', carrier: 'ctcc' }] } });
  t.notOk(ported.ok, 'only mobiles are ported');
});

t.test('compileTenant refuses an invalid document with every issue attached', async (t) => {
  try {
    compileTenant(edited((d) => { d.colour = 'red'; d.id = 'a b'; }));
    t.fail('should throw');
  } catch (e) {
    t.ok(e instanceof RoutingError);
    const err = e as RoutingError;
    t.equal(err.code, 'DP_ROUTE_INVALID_TENANT');
    t.equal(err.issues.length, 2);
    t.match(err.message, /2 issue\(s\)/);
  }
});

t.test('the TypeScript model and the schema agree on a document using every field', async (t) => {
  // Typed as TenantDocument: a field the type lacks fails tsc, a field the schema lacks fails here.
  const everything: TenantDocument = {
    $schema: '../tenant.schema.json',
    id: 'full',
    name: 'Every field',
    domain: 'full.example.invalid',
    timeZone: 'Asia/Shanghai',
    areaCode: '571',
    outboundCallerId: '057188880000',
    defaults: { targetTimeoutMs: 15000, overallTimeoutMs: 120000 },
    numbers: [
      { number: '057188880000', route: 'main', label: 'main' },
      { prefix: '0571888811', route: 'main' },
      { range: { from: '057188882000', to: '057188882999' }, route: 'main' },
    ],
    extensions: [
      ext('1001', { name: 'A', ringTimeoutMs: 10000, alsoRing: { numbers: ['13812345678'], mode: 'after' }, outboundCallerId: '057188880000', voicemail: 'vm1', route: 'main' }),
      { number: '1002', sip: { username: 'alice', ...SIP } },
    ],
    groups: [{ id: 'g', name: 'G', strategy: 'weighted', members: [{ extension: '1001', weight: 2, timeoutMs: 5000 }, { number: '13812345679' }], memberTimeoutMs: 9000, overallTimeoutMs: 60000, onDecline: 'continue' }],
    shortNumberPlans: [{ id: 'p', name: 'P', members: [{ code: '6001', extension: '1001', name: 'A' }, { code: '6009', number: '13812345670' }] }],
    schedules: [{ id: 's', timeZone: 'Europe/Berlin', weekly: [{ days: ['mon'], from: '09:00', to: '17:00' }], holidays: [{ date: '2025-01-01', to: '2025-01-02', name: 'NY' }], makeupWorkdays: [{ date: '2025-01-04', as: 'fri', name: 'M' }] }],
    blacklist: { numbers: ['13800000000'], prefixes: ['+86170'], anonymous: true, status: 403 },
    regionOverrides: [{ prefix: '+861381234', province: '北京', city: '北京' }],
    inboundTrunks: [{ id: 'c', name: 'C', sources: ['10.0.0.0/8', '2001:db8::/32'], numbers: ['0571888', '95588'], areaCode: '571' }],
    outboundGateways: [{ id: 'gw', host: 'gw.example.invalid', port: 5080, transport: 'tcp', priority: 1, prefixes: ['+86'], carriers: ['cmcc'], numberFormat: 'e164', dialPrefix: '17909' }],
    ivrMenus: [{ id: 'm', prompt: 'hello', maxDigits: 4, digitTimeoutMs: 4000, retries: 1, extensionDialling: true, route: 'main' }],
    routes: [{
      id: 'main', name: 'Main',
      rules: [
        {
          id: 'r1', description: 'all conditions',
          when: {
            schedule: { id: 's', inside: true }, callerRegion: { in: [{ province: '浙江', city: '杭州' }], not: false },
            callerNumber: { patterns: ['138*', '+8613X*'], not: false }, calledNumber: { patterns: ['0571*'] },
            callerBlacklisted: false, ivrDigits: ['1', ''],
          },
          actions: [
            { kind: 'ring', targets: [{ extension: '1001' }], strategy: 'round-robin', targetTimeoutMs: 10000, overallTimeoutMs: 30000, onFail: { busy: 'next', noAnswer: 2, unreachable: 'stop', rejected: 'next', declined: 'stop' }, onDecline: 'stop' },
            { kind: 'ringGroup', group: 'g', overallTimeoutMs: 30000, onFail: { busy: 'next' }, onDecline: 'continue' },
            { kind: 'announce', prompt: 'sorry', then: 'next' },
            { kind: 'forward', number: '13812345671', timeoutMs: 20000, onFail: { noAnswer: 'next' } },
            { kind: 'voicemail', box: 'vm' },
          ],
        },
        { id: 'r2', actions: [{ kind: 'ivr', menu: 'm' }, { kind: 'reject', status: 486, reason: 'Busy' }] },
        { id: 'r3', actions: [{ kind: 'forward', route: 'other' }] },
      ],
    }, { id: 'other', rules: [{ id: 'x', actions: [{ kind: 'reject', status: 480 }] }] }],
  };
  const r = validateTenant(everything);
  t.ok(r.ok, r.ok ? 'valid' : JSON.stringify(r.issues));
  const compiled = compileTenant(everything);
  t.equal(compiled.stats.rules, 4);
  t.ok(compiled.extensions.has('1002'));
});

t.test('routing-rules/*.schema.json are generated from the schemas in code (cannot drift)', async (t) => {
  const dir = join(process.cwd(), 'routing-rules');
  for (const [name, text] of Object.entries(schemaFiles())) {
    let onDisk: string | undefined;
    try {
      onDisk = readFileSync(join(dir, name), 'utf8');
    } catch {
      onDisk = undefined;
    }
    t.equal(onDisk, text, `routing-rules/${name} equals src/routing/schema.ts (if not: npx tsx routing-rules/generate-schemas.ts)`);
  }
});

