import { UserError } from '../errors.js';

/** NumPy .npy arrays (format 1.0/2.0 read, 1.0 written), little-endian, C order. */
export type NpyArray =
  | { dtype: 'float32'; shape: number[]; data: Float32Array }
  | { dtype: 'int32'; shape: number[]; data: Int32Array }
  | { dtype: 'int64'; shape: number[]; data: BigInt64Array };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const DESCR: Record<string, NpyArray['dtype']> = { '<f4': 'float32', '<i4': 'int32', '<i8': 'int64' };

/** A .npy header: dtype, shape, and where the data starts. `bytes` need hold only the header. */
export interface NpyHeader {
  dtype: NpyArray['dtype'];
  shape: number[];
  dataStart: number;
}

/** Parses the header at the start of `bytes` (the first 4 KiB suffice for any header numpy writes). */
export function readNpyHeader(bytes: Uint8Array, what = 'the .npy file'): NpyHeader {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new UserError(`${what} is not a NumPy .npy file (bad magic); save it with numpy.save.`);
  }
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  const dataStart = headerStart + headerLen;
  if (dataStart > bytes.length) throw new UserError(`${what} is truncated (header runs past the end).`);
  const header = new TextDecoder('latin1').decode(bytes.subarray(headerStart, dataStart));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new UserError(`${what} has an unreadable .npy header.`);
  }
  const dtype = DESCR[descr];
  if (!dtype) throw new UserError(`${what} has dtype ${descr}; expected little-endian float32 ('<f4') or int32/int64.`);
  if (fortran === 'True')
    throw new UserError(`${what} is in Fortran order; save a C-ordered array (np.ascontiguousarray).`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  return { dtype, shape, dataStart };
}

/** Parses a .npy file's bytes; `what` names the input in error messages. */
export function readNpy(bytes: Uint8Array, what = 'the .npy file'): NpyArray {
  const { dtype, shape, dataStart } = readNpyHeader(bytes, what);
  const count = shape.reduce((a, b) => a * b, 1);
  const itemSize = dtype === 'int64' ? 8 : 4;
  if (dataStart + count * itemSize > bytes.length) {
    throw new UserError(`${what} is truncated: shape (${shape.join(', ')}) needs ${count * itemSize} data bytes.`);
  }
  // Copy (Node's Buffer#slice would only view the pool) so the result is aligned and independent of the input.
  const raw = new Uint8Array(bytes.subarray(dataStart, dataStart + count * itemSize)).buffer;
  if (dtype === 'float32') return { dtype, shape, data: new Float32Array(raw) };
  if (dtype === 'int32') return { dtype, shape, data: new Int32Array(raw) };
  return { dtype, shape, data: new BigInt64Array(raw) };
}

/** The .npy format 1.0 header of a float32 array of `shape`, padded so the data starts on a 64-byte boundary. */
export function writeNpyHeader(shape: readonly number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad so that the data starts on a 64-byte boundary, ending the header with '\n'.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = `${header.padEnd(total - 10 - 1, ' ')}\n`;
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  return out;
}

/** Serializes a float32 array as .npy format 1.0. */
export function writeNpy(shape: readonly number[], data: Float32Array): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`writeNpy: shape ${shape} holds ${count} values, data has ${data.length}`);
  const header = writeNpyHeader(shape);
  const out = new Uint8Array(header.length + data.byteLength);
  out.set(header, 0);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), header.length);
  return out;
}
