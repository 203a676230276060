import { UserError } from '../errors.js';
import {
  BytesAccess,
  DTYPE_BYTES,
  PlacedTensorSource,
  elementCount,
  type DType,
  type PlacedTensor,
  type RandomAccess,
} from './tensor-source.js';

/**
 * The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`,
 * then the data section, with offsets relative to its start.
 */

/** Larger headers are refused before they are read (a real one is a few hundred kB at most). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Data types that are valid safetensors but that whylesion does not read. */
const OTHER_DTYPES = new Set([
  'F64',
  'I64',
  'I32',
  'I16',
  'I8',
  'U64',
  'U32',
  'U16',
  'U8',
  'BOOL',
  'F8_E4M3',
  'F8_E5M2',
]);

export interface SafetensorsOptions {
  /** Names of integer buffers the model never reads (transformers' position_ids): left out instead of refused. */
  skipNonFloat?: (name: string) => boolean;
}

export interface SafetensorsHeader {
  tensors: Map<string, PlacedTensor>;
  metadata: Record<string, string>;
  dataStart: number;
}

function invalid(what: string, problem: string): UserError {
  return new UserError(`${what} is not a valid safetensors file: ${problem}; re-download or re-convert it.`);
}

const isNaturalNumber = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Reads and validates the header: everything about the file is checked before any tensor is trusted. */
export async function readSafetensorsHeader(
  access: RandomAccess,
  what: string,
  options: SafetensorsOptions = {},
): Promise<SafetensorsHeader> {
  if (access.size < 8) throw invalid(what, `it is ${access.size} bytes long, shorter than the 8-byte header length`);
  const lengthBytes = new Uint8Array(8);
  await access.read(0, lengthBytes);
  const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (headerLength > BigInt(access.size - 8)) {
    throw invalid(what, `its header length ${headerLength} runs past the end of the file (${access.size} bytes)`);
  }
  if (headerLength > BigInt(MAX_HEADER_BYTES))
    throw invalid(what, `its header length ${headerLength} is over the ${MAX_HEADER_BYTES}-byte limit`);
  const headerBytes = new Uint8Array(Number(headerLength));
  await access.read(8, headerBytes);
  const dataStart = 8 + headerBytes.length;
  return { ...parseHeaderJson(headerBytes, access.size - dataStart, what, options), dataStart: dataStart };
}

function parseHeaderJson(
  headerBytes: Uint8Array,
  dataLength: number,
  what: string,
  options: SafetensorsOptions,
): Omit<SafetensorsHeader, 'dataStart'> {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch {
    throw invalid(what, 'its header is not well-formed UTF-8 JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw invalid(what, 'its header is not a JSON object');

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, PlacedTensor>();
  const spans: { name: string; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
        throw invalid(what, '__metadata__ is not an object');
      for (const [key, value] of Object.entries(entry)) {
        if (typeof value !== 'string') throw invalid(what, `__metadata__ entry '${key}' is not a string`);
        metadata[key] = value;
      }
      continue;
    }
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      throw invalid(what, `tensor ${name}'s entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
      if (typeof dtype === 'string' && OTHER_DTYPES.has(dtype)) {
        if (options.skipNonFloat?.(name)) continue;
        throw new UserError(
          `${what} stores tensor ${name} as ${dtype}; whylesion reads only F32, F16 and BF16 checkpoints, so convert it to one of those.`,
        );
      }
      throw invalid(what, `tensor ${name} has unknown dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every(isNaturalNumber))
      throw invalid(what, `tensor ${name}'s shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every(isNaturalNumber) ||
      offsets[0]! > offsets[1]!
    ) {
      throw invalid(
        what,
        `tensor ${name}'s data_offsets ${JSON.stringify(offsets)} are not two increasing non-negative integers`,
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength)
      throw invalid(
        what,
        `tensor ${name}'s offsets [${begin},${end}] run past the end of the data (${dataLength} bytes)`,
      );
    const expected = elementCount(shape) * DTYPE_BYTES[dtype as DType];
    if (end - begin !== expected) {
      throw invalid(
        what,
        `tensor ${name} spans ${end - begin} bytes but shape [${shape.join(',')}] of ${dtype} needs ${expected}`,
      );
    }
    tensors.set(name, { name, dtype: dtype as DType, shape: [...shape], position: begin });
    spans.push({ name, begin, end });
  }
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (const [i, cur] of spans.entries()) {
    const prev = spans[i - 1];
    // Empty tensors occupy no bytes, so they cannot overlap anything.
    if (prev && cur.begin < prev.end && cur.end > cur.begin) {
      throw invalid(
        what,
        `tensors ${prev.name} [${prev.begin},${prev.end}] and ${cur.name} [${cur.begin},${cur.end}] overlap`,
      );
    }
  }
  return { tensors, metadata };
}

/** A safetensors file over any RandomAccess; positions are made absolute here. */
export class SafetensorsSource extends PlacedTensorSource {
  protected constructor(
    access: RandomAccess,
    header: SafetensorsHeader,
    what: string,
    readonly metadata: Record<string, string>,
  ) {
    // In data order, so that whoever walks the tensors in this order reads the file front to back.
    const absolute = new Map(
      [...header.tensors]
        .sort(([, a], [, b]) => a.position - b.position)
        .map(([name, t]) => [name, { ...t, position: header.dataStart + t.position }]),
    );
    super(access, absolute, what);
  }

  static async fromAccess(
    access: RandomAccess,
    what: string,
    options: SafetensorsOptions = {},
  ): Promise<SafetensorsSource> {
    const header = await readSafetensorsHeader(access, what, options);
    return new SafetensorsSource(access, header, what, header.metadata);
  }

  /** In-memory safetensors (tests, Deno); `what` names it in error messages. */
  static fromBytes(bytes: Uint8Array, what = 'the safetensors buffer'): Promise<SafetensorsSource> {
    return SafetensorsSource.fromAccess(new BytesAccess(bytes, what), what);
  }
}

// ---- Writing ----

export interface TensorLayoutEntry {
  name: string;
  dtype: DType;
  shape: number[];
}

/** Element data for writing: Float32Array for F32, raw bits as Uint16Array for F16 / BF16. */
export type TensorData = Float32Array | Uint16Array;

export interface EncodedHeader {
  /** The 8-byte length plus the JSON header, padded with spaces to a multiple of 8 as the reference writer does. */
  bytes: Uint8Array;
  /** Byte length of each tensor's data, in order. */
  sizes: number[];
}

export function encodeSafetensorsHeader(
  entries: readonly TensorLayoutEntry[],
  metadata?: Record<string, string>,
): EncodedHeader {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const sizes: number[] = [];
  let offset = 0;
  for (const { name, dtype, shape } of entries) {
    if (name in header) throw new Error(`duplicate tensor name ${name}`);
    const size = elementCount(shape) * DTYPE_BYTES[dtype];
    header[name] = { dtype, shape, data_offsets: [offset, offset + size] };
    sizes.push(size);
    offset += size;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20, 8 + json.length);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  return { bytes, sizes };
}

/** Raw little-endian bytes of `data`, checked against the entry's dtype and shape. */
export function tensorBytes(entry: TensorLayoutEntry, data: TensorData): Uint8Array {
  const wantF32 = entry.dtype === 'F32';
  if (wantF32 !== data instanceof Float32Array || data.length !== elementCount(entry.shape)) {
    throw new Error(
      `data for ${entry.name} (${data.constructor.name}[${data.length}]) does not match ${entry.dtype} [${entry.shape}]`,
    );
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Whole safetensors file in memory (tests and small files). */
export function encodeSafetensors(
  tensors: readonly (TensorLayoutEntry & { data: TensorData })[],
  metadata?: Record<string, string>,
): Uint8Array {
  const { bytes: header, sizes } = encodeSafetensorsHeader(tensors, metadata);
  const out = new Uint8Array(header.length + sizes.reduce((a, b) => a + b, 0));
  out.set(header);
  let offset = header.length;
  tensors.forEach((t, i) => {
    out.set(tensorBytes(t, t.data), offset);
    offset += sizes[i]!;
  });
  return out;
}
