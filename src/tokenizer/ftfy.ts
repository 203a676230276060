import { CP1252_HIGH, ENTITIES, htmlUnescape } from './htmlUnescape.js';

/*
 * The parts of ftfy.fix_text (ftfy 6, default settings) that change real prompts, in ftfy's order:
 * HTML entities (only in lines without '<'), mojibake repair, C1 controls, Latin ligatures,
 * full/half-width forms, curly quotes, lone surrogates, terminal escapes, control characters, NFC;
 * repeated until nothing changes. Not ported: fix_line_breaks (every break it rewrites is whitespace
 * that the CLIP cleaning collapses anyway) and the rarer mojibake paths (Windows-1250/1251, MacRoman,
 * cp437, lost 0xA0 bytes).
 */

/** ftfy.fix_text's cap on one segment; longer lines are fixed piecewise, as ftfy does. */
const MAX_SEGMENT_LENGTH = 1_000_000;

// ftfy.chardata: the characters that bytes 0x80..0xBF (UTF-8 continuation bytes) show as in Latin-1 or
// Windows-1252, and lead bytes whose mojibake is unmistakable: Â Ã (Latin-1 Supplement), Ä Å (Latin
// Extended-A), Î Ï (Greek), Ð Ñ (Cyrillic), × (Hebrew), Ø Ù (Arabic); à..ï and ð..ô start 3- and 4-byte
// sequences. Lead letters like É or Ö are left out: "É»" is plausible real text.
const CONTINUATION = `\\x80-\\xbf${CP1252_HIGH}`;
const MOJIBAKE_RE = new RegExp(
  `[\\xc2-\\xc5\\xce-\\xd1\\xd7-\\xd9][${CONTINUATION}]|[\\xe0-\\xef][${CONTINUATION}]{2}|[\\xf0-\\xf4][${CONTINUATION}]{3}`,
  'u',
);
// Any character sequence whose single-byte encoding is a well-formed UTF-8 multi-byte sequence.
const UTF8_LOOKALIKE_RE = new RegExp(
  `[\\xc2-\\xdf][${CONTINUATION}]|[\\xe0-\\xef][${CONTINUATION}]{2}|[\\xf0-\\xf4][${CONTINUATION}]{3}`,
  'gu',
);
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes of `text` in Latin-1 / sloppy Windows-1252, or null when a character has no such byte. */
function encodeSingleByte(text: string): Uint8Array | null {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x100) {
      bytes[i] = code;
    } else {
      const high = CP1252_HIGH.indexOf(text[i]!);
      if (high < 0) return null;
      bytes[i] = 0x80 + high;
    }
  }
  return bytes;
}

/** Decodes single-byte-encoded `text` as UTF-8, or returns null when that is not valid UTF-8. */
function redecodeAsUtf8(text: string): string | null {
  const bytes = encodeSingleByte(text);
  if (bytes === null) return null;
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * UTF-8 text that was decoded as Latin-1/Windows-1252 ("cafÃ©" -> "café", "donâ€™t" -> "don’t").
 * Like ftfy: the whole segment is re-decoded when it can be; otherwise each blatant piece alone.
 */
function fixMojibake(text: string): string {
  if (!MOJIBAKE_RE.test(text)) return text;
  const whole = redecodeAsUtf8(text);
  if (whole !== null) return whole;
  return text.replace(UTF8_LOOKALIKE_RE, (piece) =>
    MOJIBAKE_RE.test(piece) ? (redecodeAsUtf8(piece) ?? piece) : piece,
  );
}

// ftfy.fixes.unescape_html: only complete "&name;" / "&#n;" references, also in upper case ("&EACUTE;").
const FTFY_ENTITY_RE = /&#?[0-9A-Za-z]{1,24};/g;
let upperCaseEntities: Map<string, string> | undefined;

function ftfyEntity(reference: string): string {
  if (upperCaseEntities === undefined) {
    upperCaseEntities = new Map();
    for (const [name, value] of ENTITIES) {
      const upper = name.toUpperCase();
      // Only names that mean nothing in upper case already, as ftfy's _build_html_entities.
      if (name.endsWith(';') && name === name.toLowerCase() && htmlUnescape(`&${upper}`) === `&${upper}`) {
        upperCaseEntities.set(upper, value.toUpperCase());
      }
    }
  }
  const name = reference.slice(1);
  const value = ENTITIES.get(name) ?? upperCaseEntities.get(name);
  if (value !== undefined) return value;
  if (reference.startsWith('&#')) {
    const unescaped = htmlUnescape(reference);
    return unescaped.includes(';') ? reference : unescaped;
  }
  return reference;
}

const C1_CONTROL_RE = /[\x80-\x9f]/g;
const LIGATURES: Readonly<Record<string, string>> = {
  Ĳ: 'IJ',
  ĳ: 'ij',
  ŉ: 'ʼn',
  Ǳ: 'DZ',
  ǲ: 'Dz',
  ǳ: 'dz',
  Ǆ: 'DŽ',
  ǅ: 'Dž',
  ǆ: 'dž',
  Ǉ: 'LJ',
  ǈ: 'Lj',
  ǉ: 'lj',
  Ǌ: 'NJ',
  ǋ: 'Nj',
  ǌ: 'nj',
  ﬀ: 'ff',
  ﬁ: 'fi',
  ﬂ: 'fl',
  ﬃ: 'ffi',
  ﬄ: 'ffl',
  ﬅ: 'ſt',
  ﬆ: 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');
// U+3000 ideographic space and the Halfwidth and Fullwidth Forms block, mapped through NFKC.
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;
const SINGLE_QUOTE_RE = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTE_RE = /[\u201c-\u201f]/g;
const LONE_SURROGATE_RE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const TERMINAL_ESCAPE_RE = /\x1b\[((?:\d|;)*)([a-zA-Z])/g;
// ftfy.chardata.CONTROL_CHARS: C0 controls except \t \n \f \r, DEL, deprecated format characters,
// the byte-order mark and interlinear annotation marks.
const CONTROL_CHAR_RE = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

function fixSegmentOnce(text: string, unescapeHtml: boolean): string {
  let fixed = unescapeHtml ? text.replace(FTFY_ENTITY_RE, ftfyEntity) : text;
  fixed = fixMojibake(fixed);
  fixed = fixed.replace(C1_CONTROL_RE, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]!);
  fixed = fixed.replace(LIGATURE_RE, (c) => LIGATURES[c]!);
  fixed = fixed.replace(WIDTH_RE, (c) => (c === '\u3000' ? ' ' : c.normalize('NFKC')));
  fixed = fixed.replace(SINGLE_QUOTE_RE, "'").replace(DOUBLE_QUOTE_RE, '"');
  fixed = fixed.replace(LONE_SURROGATE_RE, '\ufffd');
  fixed = fixed.replace(TERMINAL_ESCAPE_RE, '');
  fixed = fixed.replace(CONTROL_CHAR_RE, '');
  return fixed.normalize('NFC');
}

/** ftfy.fix_text with default settings, restricted to the fixes described at the top of this file. */
export function fixText(text: string): string {
  const out: string[] = [];
  // ftfy decides per line whether to unescape entities, and once a line contains '<' it stops for good.
  let unescapeHtml = true;
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos) + 1;
    if (end === 0 || end - pos > MAX_SEGMENT_LENGTH) {
      end = Math.min(text.length, pos + MAX_SEGMENT_LENGTH);
      if (end < text.length && /[\ud800-\udbff]/.test(text[end - 1]!)) end--; // keep surrogate pairs whole
    }
    let segment = text.slice(pos, end);
    if (segment.includes('<')) unescapeHtml = false;
    for (let previous = ''; previous !== segment; ) {
      previous = segment;
      segment = fixSegmentOnce(segment, unescapeHtml);
    }
    out.push(segment);
    pos = end;
  }
  return out.join('');
}
