// Modules the browser build (scripts/build-web.mjs) supplies through esbuild loaders.
declare module '*.wasm' {
  const bytes: Uint8Array;
  export default bytes;
}
declare module '*.txt' {
  const text: string;
  export default text;
}
/** The first merges of bpe_simple_vocab_16e6.txt that open_clip uses (its header line included), as text. */
declare module 'virtual:clip-merges' {
  const text: string;
  export default text;
}
