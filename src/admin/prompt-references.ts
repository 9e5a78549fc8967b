/**
 * Where a tenant document names prompts: IVR menus (`prompt`) and announce
 * actions of route rules. The routing engine's reference check
 * (src/routing/references.ts) cannot see the prompt store, so the admin
 * layer, which has both, checks these: a prompt that is referenced cannot
 * be deleted, and a write that starts naming a prompt nobody uploaded is
 * refused (AdminContext.writeTenant).
 */
import type { TenantDocument } from '../routing/index.js';

export interface PromptReference {
  prompt: string;
  /** JSON Pointer into the tenant document. */
  path: string;
  /** API path of the object holding it (`ivr-menus/welcome`, `routes/main`). */
  object: string;
  /** For messages: `IVR menu welcome`, `route main, rule closed, action 0`. */
  where: string;
}

export function promptReferences(doc: TenantDocument): PromptReference[] {
  const out: PromptReference[] = [];
  (doc.ivrMenus ?? []).forEach((m, i) => {
    out.push({ prompt: m.prompt, path: `/ivrMenus/${i}/prompt`, object: `ivr-menus/${m.id}`, where: `IVR menu ${m.id}` });
  });
  (doc.routes ?? []).forEach((r, ri) => r.rules.forEach((rule, ui) => rule.actions.forEach((a, ai) => {
    if (a.kind === 'announce') {
      out.push({ prompt: a.prompt, path: `/routes/${ri}/rules/${ui}/actions/${ai}/prompt`, object: `routes/${r.id}`, where: `route ${r.id}, rule ${rule.id}, action ${ai}` });
    }
  })));
  return out;
}
