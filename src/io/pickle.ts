import { UserError } from '../errors.js';
import type { DType } from './tensor-source.js';

/**
 * A deliberately tiny pickle reader for torch.save'd state dicts. It understands only the opcodes and the few
 * globals that torch.save emits for a dict of tensors, builds plain data from them, and executes nothing:
 * every other opcode or global is refused.
 */

/** A typed storage (one file `data/<key>` in the archive), referenced by persistent id. */
export class StorageRef {
  constructor(
    /** torch's storage class name, e.g. FloatStorage. */
    readonly storageType: string,
    /** null for storage types whylesion does not read (integers, float64...). */
    readonly dtype: DType | null,
    readonly key: string,
    readonly numel: number,
  ) {}
}

export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

class Tuple {
  constructor(readonly items: Value[]) {}
}

class Dict {
  readonly entries = new Map<string, Value>();
}

class Global {
  constructor(readonly qualifiedName: string) {}
}

type Value = null | boolean | number | string | Tuple | Dict | Global | StorageRef | TensorRef;

const STORAGE_DTYPES: Record<string, DType | null> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: null,
  LongStorage: null,
  IntStorage: null,
  ShortStorage: null,
  CharStorage: null,
  ByteStorage: null,
  BoolStorage: null,
};

const CALLABLES = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
]);

// biome-ignore lint/complexity/useSimpleNumberKeys: pickle opcodes read as the hex bytes the format documents
const OPCODE_NAMES: Record<number, string> = { 0x63: 'GLOBAL', 0x93: 'STACK_GLOBAL', 0x52: 'REDUCE' };

class Reader {
  private position = 0;
  private readonly view: DataView;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly bytes: Uint8Array,
    private readonly fail: (problem: string) => UserError,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.position;
  }

  private need(n: number): number {
    if (this.position + n > this.bytes.length) throw this.fail('it ends in the middle of an instruction');
    const at = this.position;
    this.position += n;
    return at;
  }

  u8 = (): number => this.bytes[this.need(1)]!;
  u16 = (): number => this.view.getUint16(this.need(2), true);
  u32 = (): number => this.view.getUint32(this.need(4), true);
  i32 = (): number => this.view.getInt32(this.need(4), true);
  u64 = (): number => {
    const value = this.view.getBigUint64(this.need(8), true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail('it has an impossibly large length');
    return Number(value);
  };

  /** Little-endian two's complement integer of n bytes (LONG1). */
  signed(n: number): number {
    const at = this.need(n);
    let value = 0n;
    for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(this.bytes[at + i]!);
    if (n > 0 && this.bytes[at + n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER))
      throw this.fail('it has an integer too large for a tensor size');
    return Number(value);
  }

  text(n: number): string {
    const at = this.need(n);
    try {
      return this.utf8.decode(this.bytes.subarray(at, at + n));
    } catch {
      throw this.fail('it has a string that is not UTF-8');
    }
  }

  line(): string {
    const end = this.bytes.indexOf(0x0a, this.position);
    if (end < 0) throw this.fail('it ends in the middle of a GLOBAL name');
    return this.text(end - this.position + 1).slice(0, -1);
  }
}

/**
 * Parses torch.save's data.pkl into its tensors (name -> TensorRef). `what` names the file in error messages.
 */
export function parseTorchPickle(bytes: Uint8Array, what: string): Map<string, TensorRef> {
  const fail = (problem: string) =>
    new UserError(
      `${what} is not a PyTorch state dict whylesion can read: ${problem}; re-save it with torch.save(model.state_dict()).`,
    );
  const reader = new Reader(bytes, fail);
  let stack: Value[] = [];
  const markStack: Value[][] = [];
  const memo = new Map<number, Value>();
  const storages = new Map<string, StorageRef>();

  const pop = (): Value => {
    if (stack.length === 0) throw fail('its instructions pop from an empty stack');
    return stack.pop() as Value;
  };
  const top = (): Value => {
    if (stack.length === 0) throw fail('its instructions use an empty stack');
    return stack[stack.length - 1] as Value;
  };
  const popMark = (): Value[] => {
    const items = stack;
    const previous = markStack.pop();
    if (!previous) throw fail('it closes a MARK that was never opened');
    stack = previous;
    return items;
  };
  const integer = (value: Value, field: string): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
      throw fail(`a tensor's ${field} is not a non-negative integer`);
    return value;
  };
  const integers = (value: Value, field: string): number[] => {
    if (!(value instanceof Tuple)) throw fail(`a tensor's ${field} is not a tuple`);
    return value.items.map((item) => integer(item, field));
  };
  const global = (module: string, name: string): Global => {
    const qualified = `${module}.${name}`;
    if (CALLABLES.has(qualified) || (module === 'torch' && name in STORAGE_DTYPES)) return new Global(qualified);
    throw fail(
      `it refers to ${qualified}, which a state dict of tensors never needs (nothing in the file is executed)`,
    );
  };
  const setItem = (dict: Value, key: Value, value: Value): void => {
    if (!(dict instanceof Dict)) throw fail('it stores an item into something that is not a dict');
    if (typeof key !== 'string') throw fail('it has a dict key that is not a string');
    dict.entries.set(key, value);
  };
  const persistentLoad = (pid: Value): StorageRef => {
    const items = pid instanceof Tuple ? pid.items : [];
    const [tag, type, key, location, numel] = items;
    if (
      items.length !== 5 ||
      numel === undefined ||
      tag !== 'storage' ||
      !(type instanceof Global) ||
      typeof key !== 'string' ||
      typeof location !== 'string'
    ) {
      throw fail('it has a persistent id that is not a torch storage reference');
    }
    const known = storages.get(key);
    if (known) return known;
    const storageType = type.qualifiedName.replace(/^torch\./, '');
    if (!(storageType in STORAGE_DTYPES))
      throw fail(`storage ${key} has type ${type.qualifiedName}, which is not a storage`);
    const storage = new StorageRef(storageType, STORAGE_DTYPES[storageType]!, key, integer(numel, 'storage size'));
    storages.set(key, storage);
    return storage;
  };
  const call = (callable: Value, args: Value): Value => {
    if (!(callable instanceof Global) || !(args instanceof Tuple))
      throw fail('it calls something that is not an allowed function');
    const a = args.items;
    switch (callable.qualifiedName) {
      case 'collections.OrderedDict':
        if (a.length !== 0) throw fail('it builds an OrderedDict from arguments');
        return new Dict();
      case 'torch._utils._rebuild_tensor_v2': {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.length < 6 || a.length > 7 || !(a[0] instanceof StorageRef))
          throw fail('it rebuilds a tensor with unexpected arguments');
        const shape = integers(a[2]!, 'size');
        const stride = integers(a[3]!, 'stride');
        if (shape.length !== stride.length) throw fail("a tensor's size and stride have different lengths");
        return new TensorRef(a[0], integer(a[1]!, 'storage offset'), shape, stride);
      }
      case 'torch._utils._rebuild_parameter':
        // (data, requires_grad, backward_hooks): a Parameter is its data for inference.
        if (a.length !== 3 || !(a[0] instanceof TensorRef))
          throw fail('it rebuilds a parameter with unexpected arguments');
        return a[0];
      default:
        throw fail(`it calls ${callable.qualifiedName}, which is not callable here`);
    }
  };

  for (;;) {
    const at = reader.offset;
    const opcode = reader.u8();
    switch (opcode) {
      case 0x80: // PROTO
        if (reader.u8() > 5) throw fail('it uses an unknown pickle protocol');
        break;
      case 0x95: // FRAME (protocol 4): a length hint only
        reader.u64();
        break;
      case 0x2e: {
        // STOP
        const result = pop();
        if (!(result instanceof Dict)) throw fail('it holds something other than a dict of tensors');
        const tensors = new Map<string, TensorRef>();
        for (const [name, value] of result.entries) {
          if (!(value instanceof TensorRef)) throw fail(`entry '${name}' is not a tensor`);
          tensors.set(name, value);
        }
        return tensors;
      }
      case 0x28: // MARK
        markStack.push(stack);
        stack = [];
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Dict());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new Tuple([]));
        break;
      case 0x74: {
        // TUPLE
        const items = popMark(); // before touching `stack`, which popMark replaces
        stack.push(new Tuple(items));
        break;
      }
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const items = Array.from({ length: opcode - 0x84 }, pop).reverse();
        stack.push(new Tuple(items));
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
      case 0x89: // NEWFALSE
        stack.push(opcode === 0x88);
        break;
      case 0x4b: // BININT1
        stack.push(reader.u8());
        break;
      case 0x4d: // BININT2
        stack.push(reader.u16());
        break;
      case 0x4a: // BININT
        stack.push(reader.i32());
        break;
      case 0x8a: // LONG1
        stack.push(reader.signed(reader.u8()));
        break;
      case 0x58: // BINUNICODE
        stack.push(reader.text(reader.u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(reader.text(reader.u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(reader.text(reader.u64()));
        break;
      case 0x71: // BINPUT
      case 0x72: // LONG_BINPUT
        memo.set(opcode === 0x71 ? reader.u8() : reader.u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const index = opcode === 0x68 ? reader.u8() : reader.u32();
        if (!memo.has(index)) throw fail(`it reads memo slot ${index}, which was never written`);
        stack.push(memo.get(index) as Value);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = reader.line();
        stack.push(global(module, reader.line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string')
          throw fail('it names a global with something other than strings');
        stack.push(global(module, name));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistentLoad(pop()));
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItem(top(), key, value);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) throw fail('it has a SETITEMS with an odd number of items');
        const dict = top();
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i]!, items[i + 1]!);
        break;
      }
      case 0x62: {
        // BUILD: torch sets the state dict's _metadata attribute this way; metadata is not needed.
        const state = pop();
        if (!(top() instanceof Dict) || !(state === null || state instanceof Dict))
          throw fail('it sets state on something other than a dict');
        break;
      }
      default: {
        const printable = opcode >= 0x20 && opcode < 0x7f ? ` ('${String.fromCharCode(opcode)}')` : '';
        const name = OPCODE_NAMES[opcode] ?? `0x${opcode.toString(16).padStart(2, '0')}${printable}`;
        throw fail(`it uses pickle opcode ${name} at byte ${at}, which torch.save does not emit for a state dict`);
      }
    }
  }
}

/** Plain data a pickle of built-in types holds: what Python's dict, list, tuple, str, int, bool and None become. */
export type PlainValue = null | boolean | number | string | PlainValue[] | Map<string, PlainValue>;

/**
 * Parses a pickle of plain built-in data (dicts with string keys, lists, tuples, strings, integers, booleans,
 * None), such as KnoBo's split files. Like parseTorchPickle it executes nothing: any global, call or other
 * object construction is refused. `what` names the file in error messages.
 */
export function parsePlainPickle(bytes: Uint8Array, what: string): PlainValue {
  const fail = (problem: string) =>
    new UserError(
      `${what} is not a pickle of plain data whylesion can read: ${problem}; check that the file is intact.`,
    );
  const reader = new Reader(bytes, fail);
  let stack: PlainValue[] = [];
  const markStack: PlainValue[][] = [];
  const memo = new Map<number, PlainValue>();
  const pop = (): PlainValue => {
    if (stack.length === 0) throw fail('its instructions pop from an empty stack');
    return stack.pop() as PlainValue;
  };
  const top = (): PlainValue => {
    if (stack.length === 0) throw fail('its instructions use an empty stack');
    return stack[stack.length - 1] as PlainValue;
  };
  const popMark = (): PlainValue[] => {
    const items = stack;
    const previous = markStack.pop();
    if (!previous) throw fail('it closes a MARK that was never opened');
    stack = previous;
    return items;
  };
  const list = (): PlainValue[] => {
    const target = top();
    if (!Array.isArray(target)) throw fail('it appends to something that is not a list');
    return target;
  };
  const setItems = (items: PlainValue[]): void => {
    const dict = top();
    if (!(dict instanceof Map)) throw fail('it stores an item into something that is not a dict');
    for (let i = 0; i < items.length; i += 2) {
      if (typeof items[i] !== 'string') throw fail('it has a dict key that is not a string');
      dict.set(items[i] as string, items[i + 1]!);
    }
  };
  for (;;) {
    const at = reader.offset;
    const opcode = reader.u8();
    switch (opcode) {
      case 0x80:
        if (reader.u8() > 5) throw fail('it uses an unknown pickle protocol');
        break; // PROTO
      case 0x95:
        reader.u64();
        break; // FRAME: a length hint only
      case 0x2e: {
        // STOP
        const result = pop();
        if (stack.length !== 0 || markStack.length !== 0) throw fail('it stops with unfinished instructions');
        return result;
      }
      case 0x28:
        markStack.push(stack);
        stack = [];
        break; // MARK
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE: tuples become arrays
      case 0x74: {
        const items = popMark();
        stack.push(items);
        break;
      } // TUPLE
      case 0x85:
      case 0x86:
      case 0x87:
        stack.push(Array.from({ length: opcode - 0x84 }, pop).reverse());
        break; // TUPLE1-3
      case 0x61: {
        const value = pop();
        list().push(value);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        list().push(...items);
        break;
      } // APPENDS
      case 0x73: {
        const value = pop();
        const key = pop();
        setItems([key, value]);
        break;
      } // SETITEM
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) throw fail('it has a SETITEMS with an odd number of items');
        setItems(items);
        break;
      }
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
      case 0x89:
        stack.push(opcode === 0x88);
        break; // NEWTRUE, NEWFALSE
      case 0x4b:
        stack.push(reader.u8());
        break; // BININT1
      case 0x4d:
        stack.push(reader.u16());
        break; // BININT2
      case 0x4a:
        stack.push(reader.i32());
        break; // BININT
      case 0x8a:
        stack.push(reader.signed(reader.u8()));
        break; // LONG1
      case 0x58:
        stack.push(reader.text(reader.u32()));
        break; // BINUNICODE
      case 0x8c:
        stack.push(reader.text(reader.u8()));
        break; // SHORT_BINUNICODE
      case 0x8d:
        stack.push(reader.text(reader.u64()));
        break; // BINUNICODE8
      case 0x71:
      case 0x72:
        memo.set(opcode === 0x71 ? reader.u8() : reader.u32(), top());
        break; // BINPUT, LONG_BINPUT
      case 0x94:
        memo.set(memo.size, top());
        break; // MEMOIZE
      case 0x68:
      case 0x6a: {
        // BINGET, LONG_BINGET
        const index = opcode === 0x68 ? reader.u8() : reader.u32();
        if (!memo.has(index)) throw fail(`it reads memo slot ${index}, which was never written`);
        stack.push(memo.get(index) as PlainValue);
        break;
      }
      default: {
        const printable = opcode >= 0x20 && opcode < 0x7f ? ` ('${String.fromCharCode(opcode)}')` : '';
        const name = OPCODE_NAMES[opcode] ?? `0x${opcode.toString(16).padStart(2, '0')}${printable}`;
        throw fail(
          `it uses pickle opcode ${name} at byte ${at}, which plain data never needs (nothing in the file is executed)`,
        );
      }
    }
  }
}
