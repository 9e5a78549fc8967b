/**
 * Branch parameters (RFC 3261 §8.1.1.7): "The branch parameter value MUST be
 * unique across space and time for all requests sent by the UA" and "The
 * branch ID inserted by an element compliant with this specification MUST
 * always begin with the characters "z9hG4bK"."
 *
 * Layout: magic cookie + per-process random prefix (7 chars, keeps processes
 * apart) + counter (base36, keeps this process's branches apart) + random
 * suffix (7 chars from the CSPRNG pool, so a branch cannot be guessed by an
 * off-path attacker forging responses or CANCELs). Prefix and suffix have a
 * fixed width, so prefix+counter is unique and the whole value is a token.
 */
import { MAGIC_COOKIE } from '../message/via.js';
import { randomToken } from './random-token.js';

const PROCESS_PREFIX = randomToken(1);
let counter = 0;

export function generateBranch(): string {
  counter = counter >= Number.MAX_SAFE_INTEGER ? 0 : counter + 1;
  return `${MAGIC_COOKIE}${PROCESS_PREFIX}${counter.toString(36)}${randomToken(1)}`;
}
