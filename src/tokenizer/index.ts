export { ClipTokenizer, CLIP_MERGE_COUNT } from './tokenizer.js';
export { cleanText } from './clean.js';
export { fixText } from './ftfy.js';
export { htmlUnescape } from './htmlUnescape.js';
export { gunzip } from './gunzip.js';
