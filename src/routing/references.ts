/**
 * Cross-reference checks of a schema-valid tenant document: what JSON
 * Schema cannot say. Every reference must resolve inside the same tenant
 * (a rule that rings extension 1009 needs extension 1009), ids must be
 * unique, numbers must be readable by the numbering plan, number blocks must
 * not be ambiguous, schedules must name real zones and dates, forwarding
 * between routes must not loop, and every external number the tenant rings
 * must be reachable through one of its outbound gateways.
 *
 * Pure; reports every problem with the JSON Pointer of the field.
 */
import { RoutingError, type ValidationIssue } from './errors.js';
import type { Action, GlobalDocument, OnFail, TenantDocument } from './model.js';
import { normalizePrefix, numberKey, parseNumber, type ParseOptions, type PhoneNumber } from './numbering.js';
import { assertTimeZone, dayNumber } from './schedule.js';

type Report = (path: string, message: string) => void;

export function checkTenantReferences(doc: TenantDocument): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const report: Report = (path, message) => { issues.push({ path, message, code: 'DP_ROUTE_REFERENCE' }); };
  const parseOpts: ParseOptions = doc.areaCode !== undefined ? { defaultAreaCode: doc.areaCode } : {};

  if (doc.timeZone !== undefined) checkZone(doc.timeZone, '/timeZone', report);

  const routes = uniqueIds(doc.routes ?? [], (r) => r.id, '/routes', 'route', report);
  const groups = uniqueIds(doc.groups ?? [], (g) => g.id, '/groups', 'group', report);
  const schedules = uniqueIds(doc.schedules ?? [], (s) => s.id, '/schedules', 'schedule', report);
  const menus = uniqueIds(doc.ivrMenus ?? [], (m) => m.id, '/ivrMenus', 'IVR menu', report);
  uniqueIds(doc.shortNumberPlans ?? [], (p) => p.id, '/shortNumberPlans', 'short-number plan', report);
  uniqueIds(doc.inboundTrunks ?? [], (t) => t.id, '/inboundTrunks', 'inbound trunk', report);
  uniqueIds(doc.outboundGateways ?? [], (g) => g.id, '/outboundGateways', 'outbound gateway', report);
  const extensions = uniqueIds(doc.extensions ?? [], (e) => e.number, '/extensions', 'extension', report);
  uniqueIds(doc.extensions ?? [], (e) => e.sip.username ?? e.number, '/extensions', 'SIP user name', report, '/sip/username');

  const needRoute = (id: string, path: string): void => {
    if (!routes.has(id)) report(path, `route "${id}" does not exist`);
  };
  const needExtension = (n: string, path: string): void => {
    if (!extensions.has(n)) report(path, `extension ${n} does not exist`);
  };

  // Gateways first: every external number below must be reachable through one.
  const gatewayPrefixes: Array<string[] | undefined> = (doc.outboundGateways ?? []).map((g, gi) =>
    g.prefixes?.map((p, pi) => prefixOrReport(p, `/outboundGateways/${gi}/prefixes/${pi}`, report) ?? ''));
  const reachable = (n: PhoneNumber): boolean => gatewayPrefixes.some((ps) => {
    if (ps === undefined) return true;
    const key = n.e164?.slice(1);
    return key !== undefined && ps.some((p) => p !== '' && key.startsWith(p));
  });
  /** An external number the tenant rings or forwards to. */
  const needExternal = (raw: string, path: string): void => {
    const r = parseNumber(raw, parseOpts);
    if (!r.ok) return report(path, r.error);
    if (r.number.class === 'internal') return report(path, `"${raw}" is an internal code, not an external number (ring an extension with "extension")`);
    if (!reachable(r.number)) report(path, `no outbound gateway reaches ${r.number.e164 ?? r.number.national}`);
  };

  const tenantNumbers = checkNumbers(doc, parseOpts, needRoute, report);

  const callerIdOk = (raw: string, path: string): void => {
    const r = parseNumber(raw, parseOpts);
    if (!r.ok) return report(path, r.error);
    if (r.number.class === 'service') return report(path, `${r.number.national} is a ${r.number.national.slice(0, 3)} number: inbound only, it cannot be presented on outgoing calls`);
    if (!tenantNumbers(r.number)) report(path, `${r.number.e164 ?? r.number.national} is not one of this tenant's numbers`);
  };
  if (doc.outboundCallerId !== undefined) callerIdOk(doc.outboundCallerId, '/outboundCallerId');

  // Short codes, collected first: an extension number must not equal one.
  const shortCodes = new Map<string, string>();
  (doc.shortNumberPlans ?? []).forEach((plan, pi) => {
    const codes = new Map<string, number>();
    const memberExt = new Map<string, number>();
    const memberNum = new Map<string, number>();
    plan.members.forEach((m, mi) => {
      const path = `/shortNumberPlans/${pi}/members/${mi}`;
      const prev = codes.get(m.code);
      if (prev !== undefined) report(`${path}/code`, `code ${m.code} is already used in plan "${plan.id}" by /shortNumberPlans/${pi}/members/${prev}`);
      else codes.set(m.code, mi);
      if (!shortCodes.has(m.code)) shortCodes.set(m.code, `${path}/code`);
      if (isPublicShortNumber(m.code)) report(`${path}/code`, `code ${m.code} is a public service number and must stay reachable`);
      if (m.extension !== undefined) {
        needExtension(m.extension, `${path}/extension`);
        const dup = memberExt.get(m.extension);
        if (dup !== undefined) report(`${path}/extension`, `extension ${m.extension} already has code ${plan.members[dup]?.code ?? ''} in plan "${plan.id}"`);
        else memberExt.set(m.extension, mi);
      }
      if (m.number !== undefined) {
        const r = parseNumber(m.number, parseOpts);
        if (!r.ok) report(`${path}/number`, r.error);
        else if (r.number.e164 === undefined) report(`${path}/number`, `"${m.number}" is not a full number`);
        else {
          const key = numberKey(r.number);
          const dup = memberNum.get(key);
          if (dup !== undefined) report(`${path}/number`, `${r.number.e164} already has code ${plan.members[dup]?.code ?? ''} in plan "${plan.id}"`);
          else memberNum.set(key, mi);
          if (!reachable(r.number)) report(`${path}/number`, `no outbound gateway reaches ${r.number.e164}`);
        }
      }
    });
  });

  (doc.extensions ?? []).forEach((e, ei) => {
    const path = `/extensions/${ei}`;
    if (isPublicShortNumber(e.number)) report(`${path}/number`, `extension ${e.number} would shadow the public service number ${e.number}`);
    if (shortCodes.has(e.number)) report(`${path}/number`, `extension ${e.number} equals a group short code (${shortCodes.get(e.number) ?? ''}): dialling it would be ambiguous`);
    e.alsoRing?.numbers.forEach((n, ni) => needExternal(n, `${path}/alsoRing/numbers/${ni}`));
    if (e.outboundCallerId !== undefined) callerIdOk(e.outboundCallerId, `${path}/outboundCallerId`);
    if (e.route !== undefined) needRoute(e.route, `${path}/route`);
  });

  (doc.groups ?? []).forEach((g, gi) => checkTargets(g.members, `/groups/${gi}/members`, needExtension, needExternal, parseOpts, report));

  (doc.schedules ?? []).forEach((s, si) => {
    const path = `/schedules/${si}`;
    if (s.timeZone !== undefined) checkZone(s.timeZone, `${path}/timeZone`, report);
    s.weekly.forEach((w, wi) => {
      if (w.from === '24:00') report(`${path}/weekly/${wi}/from`, 'a window cannot start at 24:00');
      else if (w.from === w.to) report(`${path}/weekly/${wi}`, `window ${w.from}-${w.to} is empty (use 00:00-24:00 for a whole day)`);
    });
    const holidayDays = new Set<number>();
    (s.holidays ?? []).forEach((h, hi) => {
      const first = dateOrReport(h.date, `${path}/holidays/${hi}/date`, report);
      const last = h.to !== undefined ? dateOrReport(h.to, `${path}/holidays/${hi}/to`, report) : first;
      if (first === undefined || last === undefined) return;
      if (last < first) return report(`${path}/holidays/${hi}/to`, `ends before it starts (${h.date})`);
      if (last - first > 366) return report(`${path}/holidays/${hi}/to`, 'a holiday cannot last more than a year');
      for (let d = first; d <= last; d++) holidayDays.add(d);
    });
    const makeupDays = new Set<number>();
    (s.makeupWorkdays ?? []).forEach((m, mi) => {
      const d = dateOrReport(m.date, `${path}/makeupWorkdays/${mi}/date`, report);
      if (d === undefined) return;
      if (holidayDays.has(d)) report(`${path}/makeupWorkdays/${mi}/date`, `${m.date} is also a holiday`);
      if (makeupDays.has(d)) report(`${path}/makeupWorkdays/${mi}/date`, `${m.date} is listed twice`);
      makeupDays.add(d);
    });
  });

  const bl = doc.blacklist;
  bl?.numbers?.forEach((n, i) => {
    const r = parseNumber(n, parseOpts);
    if (!r.ok) report(`/blacklist/numbers/${i}`, r.error);
  });
  bl?.prefixes?.forEach((p, i) => prefixOrReport(p, `/blacklist/prefixes/${i}`, report));

  // 携号转网 applies to mobile numbers only (a landline's carrier is its area's).
  doc.ported?.forEach((p, i) => {
    const r = parseNumber(p.number, parseOpts);
    if (!r.ok) report(`/ported/${i}/number`, r.error);
    else if (r.number.class !== 'mobile') report(`/ported/${i}/number`, `${p.number} is not a mobile number`);
  });

  const overrides = new Map<string, number>();
  (doc.regionOverrides ?? []).forEach((o, i) => {
    const p = prefixOrReport(o.prefix, `/regionOverrides/${i}/prefix`, report);
    if (p === undefined) return;
    const dup = overrides.get(p);
    if (dup !== undefined) report(`/regionOverrides/${i}/prefix`, `prefix ${o.prefix} is already overridden by /regionOverrides/${dup}`);
    else overrides.set(p, i);
  });

  (doc.inboundTrunks ?? []).forEach((t, ti) => {
    t.numbers?.forEach((n, ni) => {
      const r = parseNumber(n, parseOpts);
      if (r.ok && r.number.class === 'short-service') return;
      prefixOrReport(n, `/inboundTrunks/${ti}/numbers/${ni}`, report);
    });
  });

  const longestExtension = Math.max(0, ...(doc.extensions ?? []).map((e) => e.number.length));
  (doc.ivrMenus ?? []).forEach((m, mi) => {
    needRoute(m.route, `/ivrMenus/${mi}/route`);
    if (m.extensionDialling === true && (m.maxDigits ?? 1) < longestExtension) {
      report(`/ivrMenus/${mi}/maxDigits`, `extension dialling needs at least ${longestExtension} digits (the longest extension number)`);
    }
  });

  // Routes, rules, actions.
  const forwards = new Map<string, Array<{ to: string; path: string }>>();
  (doc.routes ?? []).forEach((route, ri) => {
    const rpath = `/routes/${ri}`;
    uniqueIds(route.rules, (r) => r.id, `${rpath}/rules`, `rule of route "${route.id}"`, report);
    const edges: Array<{ to: string; path: string }> = [];
    forwards.set(route.id, edges);
    route.rules.forEach((rule, rli) => {
      const path = `${rpath}/rules/${rli}`;
      const w = rule.when;
      if (w?.schedule && !schedules.has(w.schedule.id)) report(`${path}/when/schedule/id`, `schedule "${w.schedule.id}" does not exist`);
      rule.actions.forEach((a, ai) => {
        const apath = `${path}/actions/${ai}`;
        checkAction(a, apath, {
          needExtension, needExternal, needRoute, parseOpts, report,
          group: (id, p) => { if (!groups.has(id)) report(p, `group "${id}" does not exist`); },
          menu: (id, p) => { if (!menus.has(id)) report(p, `IVR menu "${id}" does not exist`); },
          forwardTo: (to, p) => edges.push({ to, path: p }),
        });
        const onFail = 'onFail' in a ? a.onFail : undefined;
        checkOnFail(onFail, ai, rule.actions.length, `${apath}/onFail`, report);
        if (a.kind === 'ring' && a.strategy !== 'weighted' && a.targets.some((t) => t.weight !== undefined)) {
          report(`${apath}/strategy`, 'targets have weights but the strategy is not "weighted"');
        }
      });
    });
  });
  (doc.groups ?? []).forEach((g, gi) => {
    if (g.strategy !== 'weighted' && g.members.some((t) => t.weight !== undefined)) report(`/groups/${gi}/strategy`, 'members have weights but the strategy is not "weighted"');
  });
  findForwardCycles(forwards, routes, report);
  return issues;
}

/** Cross-checks of the global document beyond its schema. */
export function checkGlobalDocument(doc: GlobalDocument): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const report: Report = (path, message) => { issues.push({ path, message, code: 'DP_ROUTE_REFERENCE' }); };
  doc.blacklist?.numbers?.forEach((n, i) => {
    const r = parseNumber(n);
    if (!r.ok) report(`/blacklist/numbers/${i}`, r.error);
  });
  doc.blacklist?.prefixes?.forEach((p, i) => prefixOrReport(p, `/blacklist/prefixes/${i}`, report));
  const segments = new Map<string, number>();
  doc.carriers?.segments?.forEach((s, i) => {
    const p = prefixOrReport(s.prefix, `/carriers/segments/${i}/prefix`, report);
    if (p === undefined) return;
    const dup = segments.get(p);
    if (dup !== undefined) report(`/carriers/segments/${i}/prefix`, `segment ${s.prefix} is already assigned by /carriers/segments/${dup}`);
    else segments.set(p, i);
  });
  doc.carriers?.ported?.forEach((p, i) => {
    const r = parseNumber(p.number);
    if (!r.ok) report(`/carriers/ported/${i}/number`, r.error);
    else if (r.number.class !== 'mobile') report(`/carriers/ported/${i}/number`, `${p.number} is not a mobile number`);
  });
  return issues;
}

interface ActionChecks {
  needExtension: (n: string, path: string) => void;
  needExternal: (raw: string, path: string) => void;
  needRoute: (id: string, path: string) => void;
  group: (id: string, path: string) => void;
  menu: (id: string, path: string) => void;
  forwardTo: (route: string, path: string) => void;
  parseOpts: ParseOptions;
  report: Report;
}

function checkAction(a: Action, path: string, c: ActionChecks): void {
  switch (a.kind) {
    case 'ring':
      checkTargets(a.targets, `${path}/targets`, c.needExtension, c.needExternal, c.parseOpts, c.report);
      return;
    case 'ringGroup':
      c.group(a.group, `${path}/group`);
      return;
    case 'ivr':
      c.menu(a.menu, `${path}/menu`);
      return;
    case 'forward':
      if (a.number !== undefined) c.needExternal(a.number, `${path}/number`);
      if (a.route !== undefined) {
        c.needRoute(a.route, `${path}/route`);
        c.forwardTo(a.route, `${path}/route`);
      }
      return;
    case 'announce':
    case 'reject':
    case 'voicemail':
      return;
  }
}

function checkTargets(
  targets: ReadonlyArray<{ extension?: string; number?: string }>,
  path: string,
  needExtension: (n: string, path: string) => void,
  needExternal: (raw: string, path: string) => void,
  parseOpts: ParseOptions,
  report: Report,
): void {
  const seen = new Map<string, number>();
  targets.forEach((t, i) => {
    let key: string | undefined;
    if (t.extension !== undefined) {
      needExtension(t.extension, `${path}/${i}/extension`);
      key = `ext:${t.extension}`;
    } else if (t.number !== undefined) {
      needExternal(t.number, `${path}/${i}/number`);
      const r = parseNumber(t.number, parseOpts);
      if (r.ok) key = numberKey(r.number);
    }
    if (key === undefined) return;
    const dup = seen.get(key);
    if (dup !== undefined) report(`${path}/${i}`, `same target as ${path}/${dup}`);
    else seen.set(key, i);
  });
}

function checkOnFail(onFail: OnFail | undefined, index: number, count: number, path: string, report: Report): void {
  if (!onFail) return;
  for (const [kind, next] of Object.entries(onFail)) {
    if (typeof next !== 'number') continue;
    if (next <= index) report(`${path}/${kind}`, `can only jump forward: action ${next} is not after action ${index}`);
    else if (next >= count) report(`${path}/${kind}`, `action ${next} does not exist (the rule has ${count})`);
  }
}

/**
 * Tenant numbers: readable, not ambiguous. Returns a membership test used
 * for caller-ID checks (a number inside one of the tenant's blocks counts).
 */
function checkNumbers(
  doc: TenantDocument,
  parseOpts: ParseOptions,
  needRoute: (id: string, path: string) => void,
  report: Report,
): (n: PhoneNumber) => boolean {
  const exact = new Map<string, number>();
  const prefixes = new Map<string, number>();
  const ranges: Array<{ from: string; to: string; index: number }> = [];
  (doc.numbers ?? []).forEach((n, i) => {
    const path = `/numbers/${i}`;
    needRoute(n.route, `${path}/route`);
    if (n.number !== undefined) {
      const r = parseNumber(n.number, parseOpts);
      if (!r.ok) return report(`${path}/number`, r.error);
      if (r.number.class === 'internal') return report(`${path}/number`, `"${n.number}" is an internal code, not a public number`);
      const key = numberKey(r.number);
      const dup = exact.get(key);
      if (dup !== undefined) return report(`${path}/number`, `${r.number.e164 ?? r.number.national} is already /numbers/${dup}`);
      exact.set(key, i);
    } else if (n.prefix !== undefined) {
      const p = prefixOrReport(n.prefix, `${path}/prefix`, report);
      if (p === undefined) return;
      const dup = prefixes.get(p);
      if (dup !== undefined) return report(`${path}/prefix`, `prefix ${n.prefix} is already /numbers/${dup}`);
      prefixes.set(p, i);
    } else if (n.range !== undefined) {
      const a = parseNumber(n.range.from, parseOpts);
      const b = parseNumber(n.range.to, parseOpts);
      if (!a.ok) return report(`${path}/range/from`, a.error);
      if (!b.ok) return report(`${path}/range/to`, b.error);
      if (a.number.e164 === undefined || b.number.e164 === undefined) return report(`${path}/range`, 'ranges need numbers with an E.164 form (not short numbers)');
      const from = a.number.e164.slice(1);
      const to = b.number.e164.slice(1);
      if (from.length !== to.length) return report(`${path}/range`, `from and to have different lengths (${a.number.e164}, ${b.number.e164})`);
      if (from > to) return report(`${path}/range`, `from ${a.number.e164} is after to ${b.number.e164}`);
      ranges.push({ from, to, index: i });
    }
  });
  // Nested ranges are fine (the narrower wins); identical or partially overlapping ones are ambiguous.
  ranges.sort((x, y) => x.from.length - y.from.length || (x.from < y.from ? -1 : x.from > y.from ? 1 : x.to < y.to ? 1 : x.to > y.to ? -1 : 0));
  const open: typeof ranges = [];
  for (const r of ranges) {
    while (open.length > 0) {
      const top = open[open.length - 1] as (typeof ranges)[number];
      if (top.from.length !== r.from.length || top.to < r.from) open.pop();
      else break;
    }
    const top = open[open.length - 1];
    if (top !== undefined) {
      if (top.from === r.from && top.to === r.to) report(`/numbers/${r.index}/range`, `same range as /numbers/${top.index}`);
      else if (r.to > top.to) report(`/numbers/${r.index}/range`, `overlaps /numbers/${top.index} partially: which route a number in both takes would be ambiguous`);
    }
    open.push(r);
  }
  return (n) => {
    const key = numberKey(n);
    if (exact.has(key)) return true;
    for (const p of prefixes.keys()) if (key.startsWith(p)) return true;
    return ranges.some((r) => key.length === r.from.length && key >= r.from && key <= r.to);
  };
}

function findForwardCycles(forwards: Map<string, Array<{ to: string; path: string }>>, routes: Map<string, number>, report: Report): void {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): void => {
    state.set(id, 'visiting');
    stack.push(id);
    for (const e of forwards.get(id) ?? []) {
      const s = state.get(e.to);
      if (s === 'visiting') {
        const cycle = [...stack.slice(stack.indexOf(e.to)), e.to];
        report(e.path, `forwarding loops: ${cycle.join(' → ')}`);
      } else if (s === undefined && routes.has(e.to)) visit(e.to);
    }
    stack.pop();
    state.set(id, 'done');
  };
  for (const id of forwards.keys()) if (!state.has(id)) visit(id);
}

function uniqueIds<T>(items: readonly T[], idOf: (t: T) => string, base: string, what: string, report: Report, field = ''): Map<string, number> {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const id = idOf(item);
    const dup = seen.get(id);
    if (dup !== undefined) report(`${base}/${i}${field}`, `duplicate ${what} "${id}" (also ${base}/${dup})`);
    else seen.set(id, i);
  });
  return seen;
}

function prefixOrReport(raw: string, path: string, report: Report): string | undefined {
  try {
    return normalizePrefix(raw);
  } catch (e) {
    report(path, e instanceof RoutingError ? e.message.replace(/^DP_ROUTE_BAD_NUMBER: /, '') : String(e));
    return undefined;
  }
}

function dateOrReport(date: string, path: string, report: Report): number | undefined {
  try {
    return dayNumber(date);
  } catch {
    report(path, `${date} is not a calendar date`);
    return undefined;
  }
}

function checkZone(zone: string, path: string, report: Report): void {
  try {
    assertTimeZone(zone);
  } catch {
    report(path, `unknown time zone "${zone}"`);
  }
}

/** 95xxx, 110, 10086...: numbers an internal code must not shadow. */
function isPublicShortNumber(code: string): boolean {
  const r = parseNumber(code);
  return r.ok && r.number.class === 'short-service';
}
