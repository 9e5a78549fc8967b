/**
 * CSV export: RFC 4180 quoting, Chinese text intact, no spreadsheet
 * formulas from caller-controlled fields, and the streamed export over a
 * store's pages.
 */
import t from 'tap';
import { CDR_CSV_COLUMNS, cdrCsvRow, cdrsToCsv, csvField, exportCdrCsv } from '../../../src/cdr/cdr-csv.js';
import type { PagesResult } from '../../../src/cdr/cdr-pages.js';
import { EmbeddedCdrStore } from '../../../src/store/embedded/cdr-store.js';
import type { CdrRecord } from '../../../src/store/cdr-store.js';
import { T0, cdr } from '../store/cdr-contract.js';

/** A minimal RFC 4180 reader, to check what a spreadsheet would see. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (ch === '"') quoted = false; else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { row.push(field); field = ''; } else if (ch === '\r' && text[i + 1] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++; } else field += ch;
  }
  return rows;
}

t.test('fields: quoted only when needed, quotes doubled, formulas neutralised, numbers kept', async (t) => {
  const cases: Array<[string, string]> = [
    ['plain', 'plain'],
    ['张三', '张三'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['cr\rlf', '"cr\rlf"'],
    ['', ''],
    ['+8613800138000', '+8613800138000'],
    ['-1', '-1'],
    ['+86 (10) 1234-5678', '+86 (10) 1234-5678'],
    ['=HYPERLINK("http://x")', '"\'=HYPERLINK(""http://x"")"'],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['+cmd|x', "'+cmd|x"],
    ['-2+3', "'-2+3"],
    ['\tTAB', "'\tTAB"],
  ];
  for (const [input, expected] of cases) t.equal(csvField(input), expected, JSON.stringify(input));
});

t.test('a document: header, CRLF rows, local timestamps with offset, Chinese intact, BOM optional', async (t) => {
  const started = Date.UTC(2024, 4, 1, 16, 30, 0); // 2024-05-02 00:30 in Shanghai
  const r = cdr('acme', started + 45_000, {
    startedAt: started, ringingAt: started + 1000, answeredAt: started + 12_500, caller: '+8618912345678',
    callerRegion: { province: '江苏省', city: '常州市' }, route: '总机, "夜间"', origin: { kind: 'trunk', trunk: '电信' },
    attempts: [
      { target: '1001', kind: 'extension', startedAt: started + 500, endedAt: started + 5000, outcome: 'no-answer', status: 480 },
      { target: '1002', kind: 'extension', startedAt: started + 5000, endedAt: started + 12_500, outcome: 'answered', status: 200 },
    ],
  });
  const csv = cdrsToCsv([r]);
  t.notOk(csv.startsWith('\uFEFF'), 'no BOM by default');
  t.ok(csv.endsWith('\r\n'));
  const rows = parseCsv(csv);
  t.strictSame(rows[0], [...CDR_CSV_COLUMNS]);
  const row = Object.fromEntries(CDR_CSV_COLUMNS.map((c, i) => [c, rows[1]?.[i]]));
  t.match(row, {
    origin: 'trunk:电信', caller: '+8618912345678', caller_province: '江苏省', caller_city: '常州市',
    started_at: '2024-05-02T00:30:00+08:00', answered_at: '2024-05-02T00:30:12+08:00', ended_at: '2024-05-02T00:30:45+08:00',
    wait_seconds: '12.5', talk_seconds: '32.5', disposition: 'answered', route: '总机, "夜间"', targets: '1001:no-answer;1002:answered',
  });
  t.equal(parseCsv(cdrsToCsv([r], { timeZone: 'UTC' }))[1]?.[7], '2024-05-01T16:30:00+00:00', 'another time zone');
  const withBom = cdrsToCsv([r], { bom: true });
  t.ok(withBom.startsWith('\uFEFFcall_id,'), 'BOM on request');
  t.ok(Buffer.from(withBom, 'utf8').includes(Buffer.from('江苏省', 'utf8')), 'UTF-8 bytes of the Chinese text');
  t.throws(() => cdrsToCsv([r], { timeZone: 'Mars/Olympus' }), { code: 'DP_CDR_BAD_TIME_ZONE' });
});

t.test('a record with missing or odd fields gives empty cells, never an exception', async (t) => {
  const odd = { callId: 'x', tenant: 'acme', called: 5, startedAt: 'yesterday', attempts: 'none' } as unknown as CdrRecord;
  const cells = parseCsv(cdrCsvRow(odd))[0] ?? [];
  t.equal(cells.length, CDR_CSV_COLUMNS.length);
  t.equal(cells[3], '5', 'a numeric called number is written');
  t.equal(cells[7], '', 'a bad time is empty');
  t.equal(cells[18], '', 'bad attempts are empty');
});

t.test('the streamed export walks every page, honours filters and maxRows, checks the zone first', async (t) => {
  const store = new EmbeddedCdrStore({ now: () => T0 });
  for (let i = 0; i < 2500; i++) await store.append(cdr('acme', T0 - 100_000 + i, i % 2 === 0 ? {} : { disposition: 'busy' }));
  const all = async (gen: AsyncGenerator<string>): Promise<string> => { let s = ''; for await (const c of gen) s += c; return s; };

  const full = parseCsv(await all(exportCdrCsv(store, { tenant: 'acme' })));
  t.equal(full.length, 2501, 'header and every record across three store pages');
  t.equal(full[1]?.[10], parseCsv(cdrsToCsv([cdr('acme', T0 - 100_000 + 2499)]))[1]?.[10], 'newest first');

  const busy = parseCsv(await all(exportCdrCsv(store, { tenant: 'acme', disposition: 'busy' }, { bom: true })));
  t.equal(busy.length, 1251);
  t.ok(busy.slice(1).every((row) => row[13] === 'busy'));

  const result: PagesResult = { truncated: false };
  const capped = parseCsv(await all(exportCdrCsv(store, { tenant: 'acme' }, { maxRows: 1200 }, result)));
  t.equal(capped.length, 1201);
  t.equal(result.truncated, true, 'says the selection had more');

  const none = await all(exportCdrCsv(store, { tenant: 'nobody' }));
  t.equal(none, `${CDR_CSV_COLUMNS.join(',')}\r\n`, 'an empty selection is a header alone');
  await t.rejects(all(exportCdrCsv(store, { tenant: 'acme' }, { timeZone: 'Nowhere/City' })), { code: 'DP_CDR_BAD_TIME_ZONE' });
  await t.rejects(all(exportCdrCsv(store, { tenant: 'acme', from: -5 })), { code: 'DP_STORE_BAD_QUERY' }, 'a bad query rejects before any output');
  await t.rejects(all(exportCdrCsv(store, { tenant: 'acme' }, { maxRows: 0 })), { code: 'DP_CDR_BAD_OPTION' });
});
