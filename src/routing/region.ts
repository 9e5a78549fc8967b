/**
 * Caller region (来电归属地) names. The lookup component and people write
 * the same place differently ("北京" / "北京市", "广西" / "广西壮族自治区",
 * "Zhejiang" / "zhejiang"); names are compared by a key with the
 * administrative suffix removed, so a rule written with "北京" matches a
 * fact saying "北京市".
 */

/** Longest first, so 壮族自治区 is removed before 自治区. */
const SUFFIXES = ['维吾尔自治区', '壮族自治区', '回族自治区', '特别行政区', '自治区', '省', '市'];

export function regionKey(name: string): string {
  let s = name.trim();
  for (const suffix of SUFFIXES) {
    if (s.length > suffix.length && s.endsWith(suffix)) {
      s = s.slice(0, -suffix.length);
      break;
    }
  }
  return s.toLowerCase();
}

export interface Region {
  province?: string;
  city?: string;
}
