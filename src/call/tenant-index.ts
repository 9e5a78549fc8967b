/**
 * Indexes across tenants that the call path needs before it knows the
 * tenant: which tenant a SIP domain (digest realm) belongs to, which inbound
 * trunks a source address matches, which tenant owns a public number, and
 * an extension's digest secrets. Kept up to date incrementally from the
 * tenant cache's change events, so a change of one tenant costs that
 * tenant's size, not the whole installation's.
 */
import type { CompiledGlobal, CompiledTenant, TenantDocument } from '../routing/index.js';
import { numberKey, parseNumber } from '../routing/index.js';
import type { CredentialSource, UserCredentials } from '../sip/registrar/credentials.js';
import type { Logger } from '../sip/logger.js';
import { cidrContains, parseCidr, type Cidr } from './cidr.js';

/** One tenant as the cache holds it: the stored document and its compiled form. */
export interface TenantView {
  readonly id: string;
  readonly version: number;
  readonly doc: TenantDocument;
  readonly compiled: CompiledTenant;
}

/** What the call path reads from the tenant cache (src/store/tenant-cache.ts); synchronous, never awaits. */
export interface TenantSource {
  get(id: string): TenantView | undefined;
  all(): Iterable<TenantView>;
  global(): { version: number; compiled: CompiledGlobal };
  /** Called after a tenant was added, replaced (entry) or removed (undefined). */
  onChange(listener: (id: string, entry: TenantView | undefined) => void): () => void;
}

export interface TrunkMatch {
  tenant: string;
  trunk: string;
}

interface ExtensionSecret {
  tenant: string;
  extension: string;
  ha1Md5: string;
  ha1Sha256: string;
}

interface Indexed {
  realm: string;
  trunks: Array<{ cidr: Cidr; trunk: string }>;
  exactKeys: string[];
  users: string[];
}

export interface TenantIndexOptions {
  source: TenantSource;
  /** Realm of tenants whose document names no `domain` (the profile's realm). */
  defaultRealm: string;
  log: Logger;
}

export class TenantIndex implements CredentialSource {
  private readonly source: TenantSource;
  private readonly defaultRealm: string;
  private readonly log: Logger;
  private readonly perTenant = new Map<string, Indexed>();
  /** realm → tenant ids (more than one is a configuration conflict, logged; the first stays in charge). */
  private readonly realms = new Map<string, string[]>();
  /** numberKey of every exact tenant number → tenant ids. */
  private readonly exact = new Map<string, string[]>();
  /** `${realm}\0${username}` → secrets. */
  private readonly secrets = new Map<string, ExtensionSecret>();
  private trunkList: Array<{ cidr: Cidr; tenant: string; trunk: string }> = [];
  /** Source address → matching trunks; cleared whenever trunks change. */
  private readonly trunkCache = new Map<string, readonly TrunkMatch[]>();
  private readonly unsubscribe: () => void;

  constructor(o: TenantIndexOptions) {
    this.source = o.source;
    this.defaultRealm = o.defaultRealm.toLowerCase();
    this.log = o.log;
    for (const t of o.source.all()) this.add(t);
    this.rebuildTrunks();
    this.unsubscribe = o.source.onChange((id, entry) => {
      this.remove(id);
      if (entry) this.add(entry);
      this.rebuildTrunks();
    });
  }

  close(): void {
    this.unsubscribe();
  }

  get(id: string): TenantView | undefined {
    return this.source.get(id);
  }

  global(): CompiledGlobal {
    return this.source.global().compiled;
  }

  /** The digest realm (and SIP domain) of a tenant's extensions. */
  realmOf(tenant: TenantDocument): string {
    return (tenant.domain ?? this.defaultRealm).toLowerCase();
  }

  /** Every realm some tenant uses, the default one included. */
  allRealms(): string[] {
    return [...new Set([this.defaultRealm, ...this.realms.keys()])];
  }

  /**
   * The realm a request's domain designates: a tenant's domain, else the
   * default realm (phones that put the server's IP address in their URIs).
   */
  realmForDomain(domain: string | undefined): string {
    const d = domain?.toLowerCase();
    return d !== undefined && this.realms.has(d) ? d : this.defaultRealm;
  }

  /** The tenant in charge of a realm. */
  tenantForRealm(realm: string): string | undefined {
    return this.realms.get(realm.toLowerCase())?.[0];
  }

  /** Inbound trunks (of any tenant) whose sources contain `address`. */
  trunksFrom(address: string): readonly TrunkMatch[] {
    let v = this.trunkCache.get(address);
    if (v === undefined) {
      const found: TrunkMatch[] = [];
      for (const t of this.trunkList) if (cidrContains(t.cidr, address)) found.push({ tenant: t.tenant, trunk: t.trunk });
      v = found;
      // Bounded: a scan from many addresses must not grow it without limit.
      if (this.trunkCache.size >= 10_000) this.trunkCache.clear();
      this.trunkCache.set(address, v);
    }
    return v;
  }

  /**
   * Which of the trunks a carrier call arrived on belongs to the tenant that
   * owns `called`. Numbers are exclusive to a tenant, so the first owner
   * found wins. Undefined when no candidate tenant owns the number (the
   * caller gets 404 from the first candidate's evaluation).
   */
  trunkForCalled(candidates: readonly TrunkMatch[], called: string): TrunkMatch | undefined {
    if (candidates.length === 1) return candidates[0];
    const plain = parseNumber(called);
    if (plain.ok) {
      const owners = this.exact.get(numberKey(plain.number));
      const hit = owners && candidates.find((c) => owners.includes(c.tenant));
      if (hit) return hit;
    }
    // Number blocks, and local numbers whose area code comes from the trunk.
    for (const c of candidates) {
      const t = this.source.get(c.tenant)?.compiled;
      const trunk = t?.trunks.get(c.trunk);
      if (!t || !trunk) continue;
      const r = parseNumber(called, trunk.parseOpts);
      if (!r.ok) continue;
      if (t.exactNumbers.has(numberKey(r.number))) return c;
      if (r.number.e164 !== undefined && t.numberBlocks.longest(r.number.e164.slice(1))) return c;
    }
    return undefined;
  }

  /** The extension behind a digest user of a realm. */
  extensionFor(username: string, realm: string): { tenant: string; extension: string } | undefined {
    const s = this.secrets.get(`${realm.toLowerCase()}\0${username}`);
    return s ? { tenant: s.tenant, extension: s.extension } : undefined;
  }

  /** CredentialSource for the registrar and the proxy challenge (HA1 only, never a password). */
  async lookup(username: string, realm: string): Promise<UserCredentials | undefined> {
    const s = this.secrets.get(`${realm.toLowerCase()}\0${username}`);
    return s ? { username, realm, ha1Md5: s.ha1Md5, ha1Sha256: s.ha1Sha256 } : undefined;
  }

  // ---- maintenance -----------------------------------------------------------

  private add(t: TenantView): void {
    const realm = this.realmOf(t.doc);
    const ix: Indexed = { realm, trunks: [], exactKeys: [], users: [] };
    const holders = this.realms.get(realm) ?? [];
    if (holders.length > 0) this.log.error({ tenant: t.id, realm, holder: holders[0] }, 'two tenants share one SIP domain; the first keeps it');
    holders.push(t.id);
    this.realms.set(realm, holders);
    for (const key of t.compiled.exactNumbers.keys()) {
      const owners = this.exact.get(key) ?? [];
      owners.push(t.id);
      this.exact.set(key, owners);
      ix.exactKeys.push(key);
    }
    for (const trunk of t.doc.inboundTrunks ?? []) {
      for (const src of trunk.sources) {
        try {
          ix.trunks.push({ cidr: parseCidr(src), trunk: trunk.id });
        } catch (err) {
          // The schema validates sources; this only guards a hand-edited store.
          this.log.error({ err, tenant: t.id, trunk: trunk.id, source: src }, 'unusable trunk source ignored');
        }
      }
    }
    if (holders[0] === t.id) {
      for (const e of t.doc.extensions ?? []) {
        const user = e.sip.username ?? e.number;
        const key = `${realm}\0${user}`;
        this.secrets.set(key, { tenant: t.id, extension: e.number, ha1Md5: e.sip.ha1Md5, ha1Sha256: e.sip.ha1Sha256 });
        ix.users.push(key);
      }
    }
    this.perTenant.set(t.id, ix);
  }

  private remove(id: string): void {
    const ix = this.perTenant.get(id);
    if (!ix) return;
    this.perTenant.delete(id);
    const holders = (this.realms.get(ix.realm) ?? []).filter((x) => x !== id);
    if (holders.length > 0) this.realms.set(ix.realm, holders);
    else this.realms.delete(ix.realm);
    for (const key of ix.exactKeys) {
      const owners = (this.exact.get(key) ?? []).filter((x) => x !== id);
      if (owners.length > 0) this.exact.set(key, owners);
      else this.exact.delete(key);
    }
    for (const key of ix.users) if (this.secrets.get(key)?.tenant === id) this.secrets.delete(key);
    // The realm passes to the next tenant that claimed it: index its extensions now.
    const heir = holders[0];
    if (heir !== undefined && ix.users.length > 0) {
      const t = this.source.get(heir);
      if (t) {
        this.remove(heir);
        this.add(t);
      }
    }
  }

  private rebuildTrunks(): void {
    const list: Array<{ cidr: Cidr; tenant: string; trunk: string }> = [];
    for (const [tenant, ix] of this.perTenant) for (const t of ix.trunks) list.push({ ...t, tenant });
    this.trunkList = list;
    this.trunkCache.clear();
  }
}
