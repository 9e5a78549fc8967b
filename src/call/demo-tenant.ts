/**
 * The `--demo` tenant: enough to register two softphones and call at once,
 * and to see the engine work. README ("Demo tenant") documents it; scripts,
 * the benchmark and e2e tests rely on it, so change both together.
 *
 *   1001, 1002       extensions (password: DIALPLANE_DEMO_PASSWORD or random)
 *   4008123456       hunts 1001 then 1002, 8 s each, then 480
 *   4008123457       round-robin between 1001 and 1002 (shared counter)
 *   6001, 6002       group short numbers of 1001 and 1002 (plan "demo-vpmn")
 *   127.0.0.2        the carrier trunk "demo-carrier" (any port)
 */
import type { TenantDocument } from '../routing/index.js';
import { computeHa1 } from '../sip/registrar/digest.js';

export const DEMO_TENANT_ID = 'demo';

export function demoTenant(realm: string, password: string): TenantDocument {
  const ext = (number: string, name: string): NonNullable<TenantDocument['extensions']>[number] => ({
    number,
    name,
    sip: { ha1Md5: computeHa1('MD5', number, realm, password), ha1Sha256: computeHa1('SHA-256', number, realm, password) },
  });
  return {
    id: DEMO_TENANT_ID,
    name: 'Demo tenant',
    timeZone: 'Asia/Shanghai',
    numbers: [
      { number: '4008123456', route: 'hunt', label: '400 hotline: hunt 1001 then 1002' },
      { number: '4008123457', route: 'round-robin', label: '400 hotline: round-robin 1001/1002' },
    ],
    extensions: [ext('1001', 'Demo 1001'), ext('1002', 'Demo 1002')],
    shortNumberPlans: [{
      id: 'demo-vpmn',
      name: 'Demo group short numbers',
      members: [{ code: '6001', extension: '1001' }, { code: '6002', extension: '1002' }],
    }],
    inboundTrunks: [{ id: 'demo-carrier', name: 'Demo carrier', sources: ['127.0.0.2'] }],
    routes: [
      {
        id: 'hunt',
        rules: [{
          id: 'hunt-1001-1002',
          actions: [{ kind: 'ring', strategy: 'sequential', targets: [{ extension: '1001' }, { extension: '1002' }], targetTimeoutMs: 8000 }],
        }],
      },
      {
        id: 'round-robin',
        rules: [{
          id: 'rotate',
          actions: [{ kind: 'ring', strategy: 'round-robin', targets: [{ extension: '1001' }, { extension: '1002' }], targetTimeoutMs: 20_000 }],
        }],
      },
    ],
  };
}
