/**
 * Whether `s` is well-formed UTF-16 (no lone surrogate). Redis clients send
 * strings as UTF-8, where a lone surrogate cannot be encoded and becomes
 * U+FFFD, so two different names could share one key; stores refuse such
 * names instead. (`String.prototype.isWellFormed` is ES2024, beyond this
 * project's lib setting.)
 */
export function isWellFormedUnicode(s: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}
