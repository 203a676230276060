import { HTML5_ENTITIES } from './htmlEntities.js';

/** The HTML5 entity table as a Map, so names like "constructor" never hit Object.prototype. */
export const ENTITIES: ReadonlyMap<string, string> = new Map(Object.entries(HTML5_ENTITIES));

/** Windows-1252 characters for bytes 0x80..0x9F; the five bytes it leaves undefined map to themselves. */
export const CP1252_HIGH =
  '\u20ac\x81\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\x8d\u017d\x8f' +
  '\x90\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\x9d\u017e\u0178';

// Python's html._charref: numeric references, or up to 32 name characters, ';' optional.
const CHARREF_RE = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

/** Code points Python's html.unescape drops (html._invalid_codepoints, minus those remapped first). */
function isDroppedCodePoint(cp: number): boolean {
  return (
    (cp >= 0x1 && cp <= 0x8) ||
    cp === 0xb ||
    (cp >= 0xe && cp <= 0x1f) ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe
  );
}

function numericCharref(ref: string): string {
  const digits = ref.endsWith(';') ? ref.slice(0, -1) : ref;
  const cp = digits[1] === 'x' || digits[1] === 'X' ? parseInt(digits.slice(2), 16) : parseInt(digits.slice(1), 10);
  // Python's html._invalid_charrefs: NUL, CR and the Windows-1252 remapping of 0x80..0x9F.
  if (cp === 0) return '\ufffd';
  if (cp === 0x0d) return '\r';
  if (cp >= 0x80 && cp <= 0x9f) return CP1252_HIGH[cp - 0x80]!; // the table has all 32
  if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return '\ufffd';
  if (isDroppedCodePoint(cp)) return '';
  return String.fromCodePoint(cp);
}

function namedCharref(ref: string): string {
  const known = ENTITIES.get(ref);
  if (known !== undefined) return known;
  // Like Python: the longest known prefix (only the legacy names exist without ';') wins.
  const chars = Array.from(ref);
  for (let length = chars.length - 1; length > 1; length--) {
    const prefix = chars.slice(0, length).join('');
    const value = ENTITIES.get(prefix);
    if (value !== undefined) return value + chars.slice(length).join('');
  }
  return `&${ref}`;
}

/** Python's html.unescape: named (HTML5 table, legacy names without ';') and numeric references. */
export function htmlUnescape(text: string): string {
  if (!text.includes('&')) return text;
  return text.replace(CHARREF_RE, (_match, ref: string) => (ref[0] === '#' ? numericCharref(ref) : namedCharref(ref)));
}
