/**
 * Public surface of the routing layer for the executor (src/call), the
 * store and the admin API. Everything here is pure (DESIGN.md §1 rule 2).
 */
export { compileTenant, compileGlobal, evaluate, applyCounter, EMPTY_GLOBAL, OUTCOME_CODES } from './engine.js';
export type { CompiledTenant, CompiledGlobal, EvaluateOptions, Evaluation, Explanation, Outcome, RouteTrace, RuleTrace, ConditionTrace } from './engine.js';
export type { RoutingFacts, CallOrigin } from './facts.js';
export type * from './plan.js';
export { FAILURE_KINDS, nextStepAfter, reasonPhrase } from './plan.js';
export type * from './model.js';
export { validateTenant, validateGlobal, validateDocument, validateFacts, type ValidationResult } from './validate.js';
export { checkTenantReferences, checkGlobalDocument } from './references.js';
export { TENANT_SCHEMA, GLOBAL_SCHEMA, FACTS_SCHEMA, DOCUMENT_TYPES, schemaFiles, type DocumentType } from './schema.js';
export { parseNumber, normalizeNumber, normalizePrefix, toE164, toNational, formatNumber, numberKey } from './numbering.js';
export type { PhoneNumber, NumberClass, NumberFormat, NumberParse, ParseOptions } from './numbering.js';
export { compileSchedule, isOpen, scheduleStatus, describeScheduleStatus, DEFAULT_TIME_ZONE } from './schedule.js';
export { RoutingError, ROUTING_ERROR_CODES, formatIssues, type RoutingErrorCode, type ValidationIssue } from './errors.js';
