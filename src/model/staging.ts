/**
 * The host staging buffer every weight passes through on its way to the GPU, and the NaN/Inf check run over
 * it. Where WebAssembly SIMD is available the buffer is the check module's own memory, so the check reads the
 * bytes in place: 45 ms over ViT-L/14's 1.71 GB of f32 against 230 ms for the plain JavaScript loop
 * (bench/README.md, "load check"), which stays as the fallback and for tensors built outside the buffer.
 */
import { FINITE_WASM_BASE64 } from './finite-wasm.generated.js';
import { firstNonFiniteF16, firstNonFiniteF32 } from './tensor-source.js';

interface FiniteExports {
  memory: WebAssembly.Memory;
  firstNonFiniteF32(ptr: number, n: number): number;
  firstNonFiniteF16(ptr: number, n: number): number;
}

const PAGE_BYTES = 65536;

function instantiate(): FiniteExports | undefined {
  try {
    const bytes = Uint8Array.from(atob(FINITE_WASM_BASE64), (c) => c.charCodeAt(0));
    if (!WebAssembly.validate(bytes)) return undefined;
    return new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as FiniteExports;
  } catch {
    return undefined; // no WebAssembly (or no SIMD) here: the JavaScript loop checks instead
  }
}

/** A growable host buffer viewed as f32 or f16 bits, reused for every tensor, that finds NaN/Inf in what it holds. */
export class Staging {
  private readonly wasm: FiniteExports | undefined;
  private bytes = new ArrayBuffer(0);

  constructor(useWasm = true) {
    this.wasm = useWasm ? instantiate() : undefined;
  }

  private ensure(byteLength: number): ArrayBuffer {
    if (this.wasm) {
      const memory = this.wasm.memory;
      const missing = byteLength - memory.buffer.byteLength;
      if (missing > 0) {
        try {
          memory.grow(Math.ceil(missing / PAGE_BYTES));
        } catch {
          // Beyond what wasm32 memory holds (4 GB): a plain buffer, checked by the JavaScript loop.
          return this.plain(byteLength);
        }
      }
      return memory.buffer;
    }
    return this.plain(byteLength);
  }

  private plain(byteLength: number): ArrayBuffer {
    if (this.bytes.byteLength < byteLength) this.bytes = new ArrayBuffer(byteLength);
    return this.bytes;
  }

  f32(count: number): Float32Array {
    return new Float32Array(this.ensure(count * 4), 0, count);
  }

  f16(count: number): Uint16Array {
    return new Uint16Array(this.ensure(count * 2), 0, count);
  }

  /** Index of the first NaN or infinity in `data`, or -1. */
  firstNonFiniteF32(data: Float32Array): number {
    if (this.wasm && data.buffer === this.wasm.memory.buffer)
      return this.wasm.firstNonFiniteF32(data.byteOffset, data.length);
    return firstNonFiniteF32(data);
  }

  /** Index of the first NaN or infinity in f16 bits, or -1. */
  firstNonFiniteF16(bits: Uint16Array): number {
    if (this.wasm && bits.buffer === this.wasm.memory.buffer)
      return this.wasm.firstNonFiniteF16(bits.byteOffset, bits.length);
    return firstNonFiniteF16(bits);
  }
}
