/**
 * The SSRF guard of webhook URLs: the address classifier (IPv4, IPv6, IPv6
 * carrying IPv4), what WHATWG URL does to odd IPv4 spellings before we see
 * them, the registration check, the allow list, and the delivery check
 * against a fake lookup (DNS rebinding).
 */
import t from 'tap';
import {
  WebhookUrlGuard, classifyAddress, ipValue, parseAllowList, parseCidr, type HostLookup,
} from '../../../src/webhooks/url-guard.js';

t.test('classifier: blocked ranges and public addresses', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['10.0.0.5', 'private, RFC 1918'],
    ['172.16.0.1', 'private, RFC 1918'],
    ['172.31.255.255', 'private, RFC 1918'],
    ['172.32.0.1', undefined],
    ['172.15.255.255', undefined],
    ['192.168.1.1', 'private, RFC 1918'],
    ['100.64.0.1', 'shared address space, carrier-grade NAT'],
    ['100.127.255.255', 'shared address space, carrier-grade NAT'],
    ['100.128.0.0', undefined],
    ['169.254.169.254', 'link-local, incl. cloud metadata'],
    ['0.0.0.0', '"this network", 0.0.0.0/8'],
    ['0.1.2.3', '"this network", 0.0.0.0/8'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'reserved or broadcast'],
    ['8.8.8.8', undefined],
    ['203.0.113.7', undefined],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fc00::1', 'unique local, private'],
    ['fd12:3456::1', 'unique local, private'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf::1', 'link-local'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'loopback, carried in IPv6'],
    ['::ffff:7f00:1', 'loopback, carried in IPv6'],
    ['::ffff:a9fe:a9fe', 'link-local, incl. cloud metadata, carried in IPv6'],
    ['::ffff:10.1.2.3', 'private, RFC 1918, carried in IPv6'],
    ['::ffff:8.8.8.8', undefined],
    ['64:ff9b::127.0.0.1', 'loopback, carried in IPv6'],
    ['64:ff9b::808:808', undefined],
    ['2002:7f00:1::', 'loopback, carried in IPv6'],
    ['2002:808:808::1', undefined],
    ['::127.0.0.1', 'IPv4-compatible, deprecated'],
    ['2001:4860:4860::8888', undefined],
    ['2408:8000::1', undefined],
    ['localhost', 'not an IP address'],
    ['127.1', 'not an IP address'],
  ];
  for (const [address, reason] of cases) t.equal(classifyAddress(address), reason, address);
});

t.test('IPv6 parsing: compressed, full and dotted forms have one value', async (t) => {
  t.equal(ipValue('::ffff:127.0.0.1')?.value, ipValue('0:0:0:0:0:ffff:7f00:0001')?.value);
  t.equal(ipValue('2001:db8::')?.value, 0x20010db8n << 96n);
  t.equal(ipValue('1.2.3.4')?.value, 0x01020304n);
  t.equal(ipValue('1:2:3:4:5:6:7:8:9'), undefined);
  t.strictSame(parseCidr('10.0.0.0/8'), { family: 4, bits: 10n, prefix: 8 });
  t.strictSame(parseCidr('::1'), { family: 6, bits: 1n, prefix: 128 });
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0/8', 'x/8', '10.0.0.0/']) t.throws(() => parseCidr(bad), bad);
});

t.test('WHATWG URL normalises IPv4 shorthand before the guard sees it', async (t) => {
  const spellings: Array<[string, string]> = [
    ['http://127.1/', '127.0.0.1'],
    ['http://0x7f.1/', '127.0.0.1'],
    ['http://0x7f000001/', '127.0.0.1'],
    ['http://2130706433/', '127.0.0.1'],
    ['http://017700000001/', '127.0.0.1'],
    ['http://0177.0.0.1/', '127.0.0.1'],
    ['http://127.0.0.1./', '127.0.0.1'],
    ['http://0/', '0.0.0.0'],
    ['http://[::ffff:127.0.0.1]/', '[::ffff:7f00:1]'],
    ['http://[0:0::1]/', '[::1]'],
  ];
  for (const [url, host] of spellings) t.equal(new URL(url).hostname, host, url);
  const guard = new WebhookUrlGuard();
  for (const [url] of spellings) t.match(guard.checkUrl(url), { ok: false, reason: /is blocked/ }, `${url} refused`);
});

t.test('registration check: scheme, user information, literal addresses, local names', async (t) => {
  const guard = new WebhookUrlGuard();
  const cases: Array<[string, RegExp | true]> = [
    ['https://crm.example.cn/hooks', true],
    ['http://crm.example.cn:8080/hooks?x=1', true],
    ['https://8.8.8.8/hook', true],
    ['https://[2001:4860:4860::8888]/hook', true],
    ['https://127.0.0.1.nip.io/', true], // a name: judged by its addresses at delivery
    ['ftp://crm.example.cn/', /scheme ftp is not allowed/],
    ['file:///etc/passwd', /scheme file is not allowed/],
    ['gopher://127.0.0.1:6379/_FLUSHALL', /scheme gopher/],
    ['https://user:pw@crm.example.cn/', /user information/],
    ['https://token@crm.example.cn/', /user information/],
    ['http://127.0.0.1:8080/v1/tenants', /127\.0\.0\.1 is blocked \(loopback\)/],
    ['http://169.254.169.254/latest/meta-data/', /link-local/],
    ['http://10.0.0.5/', /RFC 1918/],
    ['http://100.64.1.1/', /carrier-grade NAT/],
    ['http://224.0.0.1/', /multicast/],
    ['http://255.255.255.255/', /broadcast/],
    ['http://[::1]:8080/', /::1 is blocked \(loopback\)/],
    ['http://[::]/', /unspecified/],
    ['http://[fd00::1]/', /unique local/],
    ['http://[fe80::1]/', /link-local/],
    ['http://[::ffff:169.254.169.254]/', /link-local.*carried in IPv6/],
    ['http://localhost:8080/', /localhost is blocked \(names this machine\)/],
    ['http://LOCALHOST./', /localhost is blocked/],
    ['http://admin.localhost/', /admin\.localhost is blocked/],
    ['http://metadata.google.internal/computeMetadata/v1/', /names this machine/],
    ['not a url', /is not a URL/],
  ];
  for (const [url, expected] of cases) {
    const r = guard.checkUrl(url);
    if (expected === true) t.equal(r.ok, true, url);
    else t.match(r, { ok: false, reason: expected }, url);
  }
});

t.test('allow list: CIDRs, addresses and host names, checked at start-up', async (t) => {
  t.strictSame(parseAllowList(undefined), []);
  t.strictSame(parseAllowList(' 127.0.0.0/8, crm.lan ,,::1 '), ['127.0.0.0/8', 'crm.lan', '::1']);
  t.throws(() => parseAllowList('10.0.0.0/40'), /bad prefix length/);
  t.throws(() => parseAllowList('crm lan'), /neither a CIDR/);
  t.throws(() => parseAllowList('http://crm.lan/'), /neither a CIDR/);
  const guard = new WebhookUrlGuard({ allow: ['127.0.0.0/8', 'crm.lan', '[fd00::1]'] });
  t.equal(guard.checkUrl('http://127.0.0.1:9000/hook').ok, true, 'allowed CIDR');
  t.equal(guard.checkUrl('http://127.1:9000/hook').ok, true, 'shorthand normalised, then allowed');
  t.equal(guard.checkUrl('http://[fd00::1]/').ok, true, 'allowed IPv6 address');
  t.equal(guard.checkUrl('http://[fd00::2]/').ok, false, 'its neighbour is not');
  t.equal(guard.checkUrl('http://10.0.0.1/').ok, false, 'other private ranges stay blocked');
  t.equal(guard.checkUrl('http://localhost/').ok, false, 'allowing 127/8 does not allow the name localhost');
  t.equal(guard.blockedReason('10.1.2.3', 'CRM.lan.'), undefined, 'an allowed host name skips the address check');
  t.equal(guard.blockedReason('10.1.2.3', 'other.lan'), 'private, RFC 1918');
});

t.test("this server's own addresses are refused even when public, unless allowed", async (t) => {
  const guard = new WebhookUrlGuard({ selfAddresses: ['203.0.113.7', '2001:db8::7'] });
  t.match(guard.checkUrl('http://203.0.113.7:8080/'), { ok: false, reason: /own address/ });
  t.match(guard.checkUrl('http://[2001:db8::7]/'), { ok: false, reason: /own address/ });
  t.equal(guard.checkUrl('http://203.0.113.8/').ok, true);
  t.equal(new WebhookUrlGuard({ selfAddresses: ['203.0.113.7'], allow: ['203.0.113.7'] }).checkUrl('http://203.0.113.7/').ok, true);
});

t.test('delivery check: every resolved address must be public (DNS rebinding)', async (t) => {
  const dns: Record<string, string[]> = {
    'crm.example.cn': ['203.0.113.10', '2001:db8:1::10'],
    'rebind.example': ['203.0.113.11', '127.0.0.1'],
    'mapped.example': ['::ffff:10.0.0.1'],
    'empty.example': [],
  };
  const asked: string[] = [];
  const lookup: HostLookup = async (host) => {
    asked.push(host);
    const list = dns[host];
    if (list === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  const guard = new WebhookUrlGuard();
  t.match(await guard.resolve('https://crm.example.cn/hook', lookup), { ok: true, host: 'crm.example.cn', addresses: [{ address: '203.0.113.10' }, { address: '2001:db8:1::10' }] });
  t.match(await guard.resolve('https://rebind.example/', lookup), { ok: false, reason: 'host rebind.example resolves to 127.0.0.1, which is blocked (loopback)' });
  t.match(await guard.resolve('https://mapped.example/', lookup), { ok: false, reason: /::ffff:10\.0\.0\.1.*RFC 1918/ });
  t.match(await guard.resolve('http://127.0.0.1/', lookup), { ok: false, reason: /loopback/ }, 'literal checked without a lookup');
  t.match(await guard.resolve('https://8.8.8.8/', lookup), { ok: true, addresses: [{ address: '8.8.8.8', family: 4 }] });
  await t.rejects(guard.resolve('https://nowhere.example/', lookup), { code: 'ENOTFOUND' }, 'a lookup failure is a network error');
  await t.rejects(guard.resolve('https://empty.example/', lookup), { code: 'ENOTFOUND' });
  t.notOk(asked.includes('127.0.0.1') || asked.includes('8.8.8.8'), 'literals are never looked up');
  const allowing = new WebhookUrlGuard({ allow: ['rebind.example'] });
  t.match(await allowing.resolve('https://rebind.example/', lookup), { ok: true }, 'an allowed name is delivered to whatever it resolves to');
});
