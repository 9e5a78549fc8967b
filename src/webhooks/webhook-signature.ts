/**
 * Webhook signatures: `X-Dialplane-Signature: t=<unix seconds>,v1=<hex>`,
 * where v1 = HMAC-SHA256(secret, `${t}.${body}`) over the UTF-8 bytes.
 *
 * The timestamp is inside the signed text, so a receiver that rejects old
 * timestamps also rejects a captured request replayed later. Several `v1`
 * values may appear (reserved for secret rotation); one match suffices.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'X-Dialplane-Signature';
export const DEFAULT_TOLERANCE_SECONDS = 300;

export function signatureHex(secret: string, body: string, unixSeconds: number): string {
  return createHmac('sha256', secret).update(`${unixSeconds}.${body}`, 'utf8').digest('hex');
}

export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${signatureHex(secret, body, unixSeconds)}`;
}

/**
 * What a receiver does: true when `header` carries a v1 signature of `body`
 * under `secret` with a timestamp within `toleranceSeconds` of `nowSeconds`.
 * Any malformed header is false, never an exception.
 */
export function verifySignature(
  secret: string, body: string, header: string | undefined, nowSeconds: number, toleranceSeconds = DEFAULT_TOLERANCE_SECONDS,
): boolean {
  if (typeof header !== 'string' || header.length > 1024) return false;
  let t: number | undefined;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't' && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) candidates.push(value);
  }
  if (t === undefined || candidates.length === 0 || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(signatureHex(secret, body, t), 'hex');
  return candidates.some((c) => timingSafeEqual(Buffer.from(c, 'hex'), expected));
}
