/**
 * Validation of routing documents: the JSON Schema (ajv) first, then, for a
 * schema-valid tenant, the cross-reference checks of references.ts. Every
 * problem is reported with the JSON Pointer of the field, so the admin API
 * can point at it and a file import can say `/routes/0/rules/2/...`.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { ValidationIssue } from './errors.js';
import type { RoutingFacts } from './facts.js';
import type { GlobalDocument, TenantDocument } from './model.js';
import { checkGlobalDocument, checkTenantReferences } from './references.js';
import { FACTS_SCHEMA, GLOBAL_SCHEMA, TENANT_SCHEMA, type DocumentType } from './schema.js';

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; issues: ValidationIssue[] };

// strictRequired is off because "exactly one of" is written as oneOf of
// `required`-only branches naming properties defined by the parent schema;
// everything else is strict (unknown keywords and formats are errors).
// verbose: the formatter reads parentSchema to say which forms are allowed.
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, discriminator: true, verbose: true });
ajv.addSchema(TENANT_SCHEMA);

let tenantValidator: ValidateFunction | undefined;
let globalValidator: ValidateFunction | undefined;
let factsValidator: ValidateFunction | undefined;
const documentValidators = new Map<DocumentType, ValidateFunction>();

function tenantSchemaValidator(): ValidateFunction {
  tenantValidator ??= ajv.getSchema(TENANT_SCHEMA.$id) ?? ajv.compile(TENANT_SCHEMA);
  return tenantValidator;
}

/** Schema and cross-reference validation of a whole tenant document. */
export function validateTenant(doc: unknown): ValidationResult<TenantDocument> {
  const validate = tenantSchemaValidator();
  if (!validate(doc)) return { ok: false, issues: toIssues(validate.errors ?? []) };
  const tenant = doc as TenantDocument;
  const issues = checkTenantReferences(tenant);
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: tenant };
}

/** Schema validation of one document type (an extension, a route...) as the admin API receives it. */
export function validateDocument(type: DocumentType, doc: unknown): ValidationResult<unknown> {
  let validate = documentValidators.get(type);
  if (!validate) {
    validate = ajv.compile({ $ref: `${TENANT_SCHEMA.$id}#/$defs/${type}` });
    documentValidators.set(type, validate);
  }
  if (!validate(doc)) return { ok: false, issues: toIssues(validate.errors ?? []) };
  return { ok: true, value: doc };
}

export function validateGlobal(doc: unknown): ValidationResult<GlobalDocument> {
  globalValidator ??= ajv.compile(GLOBAL_SCHEMA);
  if (!globalValidator(doc)) return { ok: false, issues: toIssues(globalValidator.errors ?? []) };
  const global = doc as GlobalDocument;
  const issues = checkGlobalDocument(global);
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: global };
}

/** For the dry-run API: facts typed by a person rather than built by the executor. */
export function validateFacts(doc: unknown): ValidationResult<RoutingFacts> {
  factsValidator ??= ajv.compile(FACTS_SCHEMA);
  if (!factsValidator(doc)) return { ok: false, issues: toIssues(factsValidator.errors ?? []) };
  return { ok: true, value: doc as RoutingFacts };
}

interface SchemaLike {
  description?: string;
  oneOf?: Array<{ required?: string[]; properties?: { kind?: { const?: string } } }>;
  enum?: unknown[];
}

/**
 * Turns ajv errors into one issue per problem. The branches of a failed
 * oneOf/anyOf are noise ("must have required property 'number'" and
 * "... 'prefix'" and "... 'range'"): they are folded into one message that
 * lists the allowed forms.
 */
export function toIssues(errors: readonly ErrorObject[]): ValidationIssue[] {
  const folding = errors.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
  const isBranchNoise = (e: ErrorObject): boolean => folding.some((f) =>
    f !== e && e.instancePath.startsWith(f.instancePath) && e.schemaPath.startsWith(`${f.schemaPath}/`));
  const issues: ValidationIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (isBranchNoise(e)) continue;
    const issue = describe(e);
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    issues.push(issue);
  }
  return issues;
}

function describe(e: ErrorObject): ValidationIssue {
  const parent = (e.parentSchema ?? {}) as SchemaLike;
  const at = (path: string, message: string): ValidationIssue => ({ path, message, code: 'DP_ROUTE_SCHEMA' });
  switch (e.keyword) {
    case 'required':
      return at(`${e.instancePath}/${(e.params as { missingProperty: string }).missingProperty}`, 'is required');
    case 'additionalProperties':
      return at(e.instancePath, `has unknown property "${(e.params as { additionalProperty: string }).additionalProperty}"`);
    case 'oneOf': {
      const forms = (parent.oneOf ?? []).map((b) => b.required?.join(' + ')).filter((f): f is string => f !== undefined);
      if (forms.length > 0) {
        const passing = (e.params as { passingSchemas: number[] | null }).passingSchemas;
        return at(e.instancePath, passing ? `must have only one of: ${forms.join(', ')}` : `must have one of: ${forms.join(', ')}`);
      }
      return at(e.instancePath, parent.description ? `must be ${parent.description}` : 'must match exactly one allowed form');
    }
    case 'anyOf':
      return at(e.instancePath, parent.description ? `must be ${parent.description}` : 'must match one of the allowed forms');
    case 'discriminator': {
      const kinds = (parent.oneOf ?? []).map((b) => b.properties?.kind?.const).filter((k): k is string => k !== undefined);
      const p = e.params as { tag: string; tagValue: unknown };
      return at(`${e.instancePath}/${p.tag}`, `${JSON.stringify(p.tagValue)} is not one of: ${kinds.join(', ')}`);
    }
    case 'enum':
      return at(e.instancePath, `must be one of: ${(parent.enum ?? []).map((v) => JSON.stringify(v)).join(', ')}`);
    case 'pattern':
      return at(e.instancePath, parent.description ? `${e.message ?? 'is invalid'}: ${parent.description}` : (e.message ?? 'is invalid'));
    default:
      return at(e.instancePath, e.message ?? 'is invalid');
  }
}
