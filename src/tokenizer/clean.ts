import { fixText } from './ftfy.js';
import { htmlUnescape } from './htmlUnescape.js';

/** Unicode White_Space: what `\s` matches in the `regex` module that open_clip uses. */
export const WHITE_SPACE_CLASS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WHITE_SPACE_RUN_RE = new RegExp(`[${WHITE_SPACE_CLASS}]+`, 'gu');
// Python's str.strip() removes str.isspace() characters, which adds \x1c..\x1f to White_Space.
const PY_SPACE_RE = new RegExp(`[${WHITE_SPACE_CLASS}\\x1c-\\x1f]`);

/** Python's str.strip(); a loop rather than a `\s+$` regex, which is quadratic on long blank runs. */
function pyStrip(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && PY_SPACE_RE.test(text[start]!)) start++;
  while (end > start && PY_SPACE_RE.test(text[end - 1]!)) end--;
  return text.slice(start, end);
}

/**
 * open_clip's text cleaning (clean='lower'): ftfy.fix_text, html.unescape twice, strip,
 * whitespace runs to one space, strip, lowercase.
 */
export function cleanText(text: string): string {
  const basic = pyStrip(htmlUnescape(htmlUnescape(fixText(text))));
  return pyStrip(basic.replace(WHITE_SPACE_RUN_RE, ' ')).toLowerCase();
}
