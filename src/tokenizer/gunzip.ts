/** Inflates gzip bytes with the web-standard DecompressionStream (Node 18+, Deno, browsers). */
export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  // slice(): a copy whose type is ArrayBuffer-backed, as Blob requires.
  const stream = new Blob([bytes.slice()]).stream().pipeThrough(new DecompressionStream('gzip'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
