import { open } from 'node:fs/promises';

/*
 * A direct reader for the embedding column of the Parquet files parquet.ts writes: uncompressed PLAIN float pages
 * (data page v1 or v2) of a required list of required floats. There every leaf value is present, so a page's float
 * values follow its repetition and definition levels contiguously, and reading a row group is a few file reads and
 * a copy: parquet-wasm decodes the levels value by value (about 25 times slower). Files with any other layout
 * (compressed, dictionary-encoded, nullable, written by another tool) return undefined, and the caller uses
 * parquet-wasm. Only the Thrift compact encoding of the footer and page headers is parsed.
 */

type Thrift = Map<number, unknown>;

/** The Thrift compact protocol, enough for FileMetaData and PageHeader (no maps, sets, doubles needed but skipped). */
class CompactReader {
  constructor(
    private readonly bytes: Uint8Array,
    public at = 0,
  ) {}

  private varint(): bigint {
    let result = 0n,
      shift = 0n;
    for (;;) {
      if (this.at >= this.bytes.length) throw new RangeError('thrift: past the end');
      const b = this.bytes[this.at++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
    }
  }

  private zigzag(): number {
    const v = this.varint();
    return Number((v >> 1n) ^ -(v & 1n));
  }

  private value(type: number): unknown {
    switch (type) {
      case 1:
        return true;
      case 2:
        return false;
      case 3:
        return (this.bytes[this.at++]! << 24) >> 24;
      case 4:
      case 5:
      case 6:
        return this.zigzag();
      case 7:
        this.at += 8;
        return undefined;
      case 8: {
        const length = Number(this.varint());
        const bytes = this.bytes.subarray(this.at, this.at + length);
        this.at += length;
        return bytes;
      }
      case 9:
      case 10: {
        const header = this.bytes[this.at++]!;
        const size = header >> 4 === 15 ? Number(this.varint()) : header >> 4;
        const elementType = header & 0x0f;
        // In lists, booleans are one byte each.
        return Array.from({ length: size }, () =>
          elementType === 1 || elementType === 2 ? this.bytes[this.at++] === 1 : this.value(elementType),
        );
      }
      case 11: {
        const size = Number(this.varint());
        if (size > 0) {
          const types = this.bytes[this.at++]!;
          for (let i = 0; i < size; i++) {
            this.value(types >> 4);
            this.value(types & 0x0f);
          }
        }
        return undefined;
      }
      case 12:
        return this.struct();
      default:
        throw new RangeError(`thrift: unknown type ${type}`);
    }
  }

  struct(): Thrift {
    const fields: Thrift = new Map();
    let id = 0;
    for (;;) {
      const header = this.bytes[this.at++];
      if (header === undefined) throw new RangeError('thrift: past the end');
      if (header === 0) return fields;
      const delta = header >> 4;
      id = delta === 0 ? this.zigzag() : id + delta;
      fields.set(id, this.value(header & 0x0f));
    }
  }
}

const num = (t: Thrift | undefined, id: number): number | undefined => t?.get(id) as number | undefined;
const text = (v: unknown): string => new TextDecoder().decode(v as Uint8Array);

/** Where each row group's embedding floats lie: per row group, its rows and its pages' float byte ranges. */
export interface PlainLayout {
  rowGroups: { rows: number; ranges: { offset: number; bytes: number }[] }[];
}

const FLOAT = 4,
  UNCOMPRESSED = 0,
  PLAIN = 0,
  REQUIRED = 0,
  REPEATED = 2,
  DATA_PAGE = 0,
  DATA_PAGE_V2 = 3;

/** The layout of the embedding column if the file is laid out as parquet.ts writes it, else undefined. */
export async function plainEmbeddingLayout(path: string, dim: number): Promise<PlainLayout | undefined> {
  const handle = await open(path, 'r');
  try {
    const size = (await handle.stat()).size;
    const tail = new Uint8Array(8);
    await handle.read(tail, 0, 8, size - 8);
    if (new TextDecoder().decode(tail.subarray(4)) !== 'PAR1') return undefined;
    const footerLength = new DataView(tail.buffer).getUint32(0, true);
    const footer = new Uint8Array(footerLength);
    await handle.read(footer, 0, footerLength, size - 8 - footerLength);
    const meta = new CompactReader(footer).struct();
    // The schema, flattened depth first: root, file, embedding (REQUIRED) > list (REPEATED) > item (REQUIRED FLOAT).
    const schema = (meta.get(2) as Thrift[]).map((e) => ({
      type: num(e, 1),
      repetition: num(e, 3),
      name: text(e.get(4)),
      children: num(e, 5) ?? 0,
    }));
    const at = schema.findIndex((e) => e.name === 'embedding');
    const [embedding, list, item] = schema.slice(at, at + 3);
    if (
      at < 0 ||
      embedding?.repetition !== REQUIRED ||
      embedding.children !== 1 ||
      list?.repetition !== REPEATED ||
      list.children !== 1 ||
      item?.repetition !== REQUIRED ||
      item.type !== FLOAT
    )
      return undefined;
    const rowGroups: PlainLayout['rowGroups'] = [];
    for (const group of meta.get(4) as Thrift[]) {
      const rows = num(group, 3)!;
      const chunk = (group.get(1) as Thrift[])
        .map((c) => c.get(3) as Thrift)
        .find((m) => (m.get(3) as unknown[]).map(text)[0] === 'embedding');
      if (
        !chunk ||
        num(chunk, 1) !== FLOAT ||
        num(chunk, 4) !== UNCOMPRESSED ||
        chunk.has(11) ||
        num(chunk, 5) !== rows * dim
      )
        return undefined;
      const ranges: PlainLayout['rowGroups'][number]['ranges'] = [];
      const start = num(chunk, 9)!,
        end = start + num(chunk, 7)!;
      let values = 0;
      for (let offset = start; offset < end; ) {
        // A page header (with its statistics) takes a few dozen bytes; 4 KB holds any this writer makes.
        const head = new Uint8Array(Math.min(4096, end - offset));
        await handle.read(head, 0, head.length, offset);
        const reader = new CompactReader(head);
        const page = reader.struct();
        const pageBytes = num(page, 3)!;
        const body = offset + reader.at;
        const pageType = num(page, 1);
        if (pageType === DATA_PAGE) {
          const header = page.get(5) as Thrift;
          const n = num(header, 1)!;
          if (num(header, 2) !== PLAIN) return undefined;
          // v1: repetition then definition levels, each preceded by its 4-byte length, then the values.
          const lengths = new Uint8Array(4);
          await handle.read(lengths, 0, 4, body);
          const repetition = new DataView(lengths.buffer).getUint32(0, true);
          await handle.read(lengths, 0, 4, body + 4 + repetition);
          const definition = new DataView(lengths.buffer).getUint32(0, true);
          const valuesAt = body + 8 + repetition + definition;
          if (valuesAt + n * 4 !== body + pageBytes) return undefined;
          ranges.push({ offset: valuesAt, bytes: n * 4 });
          values += n;
        } else if (pageType === DATA_PAGE_V2) {
          const header = page.get(8) as Thrift;
          const n = num(header, 1)!;
          if (num(header, 2) !== 0 || num(header, 4) !== PLAIN || header.get(7) === true) return undefined;
          const valuesAt = body + num(header, 5)! + num(header, 6)!;
          if (valuesAt + n * 4 !== body + pageBytes) return undefined;
          ranges.push({ offset: valuesAt, bytes: n * 4 });
          values += n;
        } else {
          return undefined; // a dictionary or index page: not the layout this reader knows
        }
        offset = body + pageBytes;
      }
      if (values !== rows * dim) return undefined;
      rowGroups.push({ rows, ranges });
    }
    return { rowGroups };
  } catch (error) {
    // A footer or page header this reader does not understand: parquet-wasm reads (or refuses) the file instead.
    if ((error as NodeJS.ErrnoException).code) throw error;
    return undefined;
  } finally {
    await handle.close();
  }
}

/** The float32 rows of one row group, read straight from the file. */
export async function readPlainRowGroup(
  path: string,
  group: PlainLayout['rowGroups'][number],
  dim: number,
): Promise<Float32Array> {
  const data = new Float32Array(group.rows * dim);
  const bytes = new Uint8Array(data.buffer);
  const handle = await open(path, 'r');
  try {
    let at = 0;
    for (const range of group.ranges) {
      for (let done = 0; done < range.bytes; ) {
        const { bytesRead } = await handle.read(bytes, at + done, range.bytes - done, range.offset + done);
        if (bytesRead === 0) throw new Error(`${path} ended early`);
        done += bytesRead;
      }
      at += range.bytes;
    }
  } finally {
    await handle.close();
  }
  return data;
}
