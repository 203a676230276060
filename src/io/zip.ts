import { UserError } from '../errors.js';
import type { RandomAccess } from './tensor-source.js';

/** One stored (uncompressed) member of a zip archive. */
export interface ZipEntry {
  name: string;
  /** Absolute byte position of the member's data. */
  dataStart: number;
  size: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
/** The end record is 22 bytes plus a comment of up to 65535 bytes. */
const EOCD_SEARCH_BYTES = 22 + 0xffff;
/** torch's central directory is ~100 bytes per tensor; anything larger than this is not a checkpoint. */
const MAX_CENTRAL_DIRECTORY_BYTES = 256 * 1024 * 1024;

async function readBytes(access: RandomAccess, position: number, length: number): Promise<DataView> {
  const bytes = new Uint8Array(length);
  await access.read(position, bytes);
  return new DataView(bytes.buffer);
}

/**
 * Reads a zip archive's central directory (zip64 included) with positioned reads, as torch.save writes them:
 * members stored without compression. Compressed members are listed with `compressed: true` so callers can refuse
 * them by name.
 */
export async function readZipDirectory(
  access: RandomAccess,
  what: string,
): Promise<Map<string, ZipEntry & { compressed: boolean }>> {
  const bad = (problem: string) =>
    new UserError(`${what} is not a readable zip archive: ${problem}; re-download it or re-save it with torch.save.`);
  if (access.size < 22) throw bad(`it is only ${access.size} bytes long`);
  const tailLength = Math.min(access.size, EOCD_SEARCH_BYTES);
  const tailStart = access.size - tailLength;
  const tail = await readBytes(access, tailStart, tailLength);
  let eocd = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tail.getUint32(i, true) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('no end-of-central-directory record');
  let entryCount = tail.getUint16(eocd + 10, true);
  let directorySize = tail.getUint32(eocd + 12, true);
  let directoryStart = tail.getUint32(eocd + 16, true);
  if (entryCount === 0xffff || directorySize === 0xffffffff || directoryStart === 0xffffffff) {
    const locator = eocd - 20;
    if (locator < 0 || tail.getUint32(locator, true) !== ZIP64_LOCATOR_SIGNATURE)
      throw bad('a zip64 archive without its zip64 locator');
    const recordPosition = Number(tail.getBigUint64(locator + 8, true));
    if (recordPosition + 56 > access.size) throw bad('its zip64 end record lies past the end of the file');
    const record = await readBytes(access, recordPosition, 56);
    if (record.getUint32(0, true) !== ZIP64_EOCD_SIGNATURE) throw bad('a broken zip64 end record');
    entryCount = Number(record.getBigUint64(32, true));
    directorySize = Number(record.getBigUint64(40, true));
    directoryStart = Number(record.getBigUint64(48, true));
  }
  if (directorySize > MAX_CENTRAL_DIRECTORY_BYTES || directoryStart + directorySize > access.size) {
    throw bad(`its central directory (${directorySize} bytes at ${directoryStart}) does not fit in the file`);
  }
  const directory = await readBytes(access, directoryStart, directorySize);
  const entries = new Map<string, ZipEntry & { compressed: boolean }>();
  let at = 0;
  for (let n = 0; n < entryCount; n++) {
    if (at + 46 > directorySize || directory.getUint32(at, true) !== CENTRAL_SIGNATURE)
      throw bad(`central directory entry ${n} is broken`);
    const method = directory.getUint16(at + 10, true);
    let compressedSize = directory.getUint32(at + 20, true);
    let size = directory.getUint32(at + 24, true);
    const nameLength = directory.getUint16(at + 28, true);
    const extraLength = directory.getUint16(at + 30, true);
    const commentLength = directory.getUint16(at + 32, true);
    let localHeader = directory.getUint32(at + 42, true);
    const end = at + 46 + nameLength + extraLength + commentLength;
    if (end > directorySize) throw bad(`central directory entry ${n} runs past the directory`);
    const name = new TextDecoder().decode(new Uint8Array(directory.buffer, at + 46, nameLength));
    // Zip64 extra field: 64-bit values for exactly those fields saturated at 0xffffffff, in this order.
    for (let e = at + 46 + nameLength; e + 4 <= at + 46 + nameLength + extraLength; ) {
      const id = directory.getUint16(e, true);
      const length = directory.getUint16(e + 2, true);
      if (id === 0x0001) {
        let field = e + 4;
        const next = (): number => {
          if (field + 8 > e + 4 + length) throw bad(`entry ${name} has a short zip64 field`);
          const value = Number(directory.getBigUint64(field, true));
          field += 8;
          return value;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (localHeader === 0xffffffff) localHeader = next();
      }
      e += 4 + length;
    }
    if (localHeader + 30 > access.size) throw bad(`entry ${name}'s local header lies past the end of the file`);
    const local = await readBytes(access, localHeader, 30);
    if (local.getUint32(0, true) !== LOCAL_SIGNATURE) throw bad(`entry ${name}'s local header is broken`);
    // torch pads local extra fields so data is 64-byte aligned; the local lengths, not the central ones, say where data starts.
    const dataStart = localHeader + 30 + local.getUint16(26, true) + local.getUint16(28, true);
    if (dataStart + compressedSize > access.size) throw bad(`entry ${name}'s data runs past the end of the file`);
    entries.set(name, { name, dataStart, size, compressed: method !== 0 || compressedSize !== size });
    at = end;
  }
  return entries;
}
