/**
 * The record format the feature cache and the text cache share: a 32-byte key (a sha256), the row's float32
 * values, then the first 8 bytes of the sha256 of those two, so a flipped byte is caught when read back.
 */
import { createHash } from 'node:crypto';

const KEY_BYTES = 32,
  CHECK_BYTES = 8;

const check = (body: Uint8Array): Buffer => createHash('sha256').update(body).digest().subarray(0, CHECK_BYTES);

/** Bytes of one record of a row of `dim` values. */
export const recordBytes = (dim: number): number => KEY_BYTES + dim * 4 + CHECK_BYTES;

/** The records of `entries` (hex keys of 32 bytes), back to back, ready to append in one write. */
export function packRecords(entries: readonly { key: string; row: Float32Array }[], dim: number): Uint8Array {
  const record = recordBytes(dim),
    body = record - CHECK_BYTES;
  const bytes = new Uint8Array(entries.length * record);
  entries.forEach(({ key, row }, i) => {
    bytes.set(Buffer.from(key, 'hex'), i * record);
    bytes.set(new Uint8Array(row.buffer, row.byteOffset, row.byteLength), i * record + KEY_BYTES);
    bytes.set(check(bytes.subarray(i * record, i * record + body)), i * record + body);
  });
  return bytes;
}

/**
 * The rows of the whole records in `bytes` whose check holds, by hex key; `good` the bytes of those records (to
 * rewrite a file without the damaged ones), `damaged` how many failed their check, `whole` how many there were
 * (a record cut short by a crash is not counted).
 */
export function readRecords(
  bytes: Uint8Array,
  dim: number,
): { rows: Map<string, Float32Array>; good: Uint8Array[]; damaged: number; whole: number } {
  const record = recordBytes(dim),
    whole = Math.floor(bytes.length / record);
  const rows = new Map<string, Float32Array>(),
    good: Uint8Array[] = [];
  for (let r = 0; r < whole; r++) {
    const at = r * record;
    const body = bytes.subarray(at, at + record - CHECK_BYTES);
    if (!check(body).equals(bytes.subarray(at + record - CHECK_BYTES, at + record))) continue;
    good.push(bytes.subarray(at, at + record));
    const copy = new Uint8Array(body);
    rows.set(Buffer.from(copy.buffer, 0, KEY_BYTES).toString('hex'), new Float32Array(copy.buffer, KEY_BYTES, dim));
  }
  return { rows, good, damaged: whole - good.length, whole };
}
