import { UserError } from '../errors.js';
import { acquireDevice, type AcquiredDevice } from './device.js';
import { awaitGpu } from './gpu-wait.js';

/** One compute dispatch of a recorded program. */
export interface Dispatch {
  /** Kernel name and place in the graph, e.g. `vision.block3.mlp.c_fc`; used in errors and profiles. */
  label: string;
  kernel: string;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
  /** Floating-point operations and bytes moved, for profiles. */
  flops?: number;
  bytes?: number;
}

/**
 * The engine's handle on a GPUDevice: cached pipelines, explicitly owned buffers, one-submission
 * program execution, and errors that name the kernel.
 */
export class Gpu {
  readonly device: GPUDevice;
  readonly adapterInfo: AcquiredDevice['adapterInfo'];
  readonly hasF16: boolean;
  readonly hasTimestamps: boolean;
  /** Subgroup kernels may be used: decide with this, not `device.features` (see AcquiredDevice.subgroups). */
  readonly hasSubgroups: boolean;
  private readonly owned: boolean;
  /** Held for the device's life: Dawn segfaults if the adapter is garbage-collected first. */
  private readonly adapter: GPUAdapter | undefined;
  private readonly pipelines = new Map<string, Promise<GPUComputePipeline>>();
  private compileMsTotal = 0;
  private readonly liveBuffers = new Set<GPUBuffer>();
  private lostReason: string | undefined;
  private zeroBuffer: GPUBuffer | undefined;

  private constructor(acquired: AcquiredDevice) {
    this.device = acquired.device;
    this.adapterInfo = acquired.adapterInfo;
    this.owned = acquired.owned;
    this.adapter = acquired.adapter;
    this.hasF16 = this.device.features.has('shader-f16');
    this.hasTimestamps = this.device.features.has('timestamp-query');
    this.hasSubgroups = acquired.subgroups;
    void this.device.lost.then((info) => {
      this.lostReason = info.message || info.reason || 'unknown reason';
    });
  }

  static async create(options: { device?: GPUDevice } = {}): Promise<Gpu> {
    return new Gpu(await acquireDevice(options));
  }

  /**
   * Subgroups of 8-16 lanes, as CPU rasterizers run them (one SIMD vector); real GPUs (32-64 lanes) would
   * leave most of each warp idle with one-subgroup workgroups, so they keep the workgroup-based kernels.
   * The 8-lane kernels rely on a workgroup of 8 lying in one subgroup (broadcasts from lanes 0-7,
   * subgroupAdd/Max over the workgroup), hence at least 8; with 16 (llvmpipe at 512 bits) a workgroup
   * fills half of one subgroup, whose idle lanes the reductions leave out.
   */
  get hasCpuSizedSubgroups(): boolean {
    if (!this.hasSubgroups) return false;
    const info = (this.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    return (info?.subgroupMinSize ?? 8) >= 8 && (info?.subgroupMaxSize ?? 8) <= 16;
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  /** A small zero-filled storage buffer bound where a kernel's optional input is absent. */
  get zeros(): GPUBuffer {
    this.zeroBuffer ??= this.storageBuffer('zeros', 16);
    return this.zeroBuffer;
  }

  /** Number of buffers created through this Gpu and not yet destroyed (for leak checks). */
  get liveBufferCount(): number {
    return this.liveBuffers.size;
  }

  /** Throws if the device was lost; every submission checks this first. */
  assertAlive(): void {
    if (this.lostReason !== undefined) {
      // Not the user's doing, but nothing they can fix in code either: one sentence, no stack trace.
      throw new UserError(`The GPU device was lost (${this.lostReason}); load the model again to continue.`);
    }
  }

  /** Compiles (once per distinct WGSL text) a compute pipeline with entry point `main`; `label` names it in errors. */
  pipeline(label: string, code: string): Promise<GPUComputePipeline> {
    let pipeline = this.pipelines.get(code);
    if (!pipeline) {
      pipeline = this.compile(label, code);
      this.pipelines.set(code, pipeline);
      pipeline.catch(() => this.pipelines.delete(code));
      this.compilesRequested++;
      this.onCompile?.(this.compilesFinished, this.compilesRequested);
      void pipeline
        .finally(() => this.onCompile?.(++this.compilesFinished, this.compilesRequested))
        .catch(() => undefined);
    }
    return pipeline;
  }

  /**
   * Told as pipelines are asked for and as they finish compiling (a first forward compiles a few dozen, which
   * takes seconds on a CPU adapter): how many have finished and how many were asked for so far.
   */
  onCompile: ((finished: number, requested: number) => void) | undefined;
  private compilesRequested = 0;
  private compilesFinished = 0;

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  /** Wall milliseconds spent in pipeline creation, summed over pipelines (they overlap: more than elapsed time). */
  get compileMs(): number {
    return this.compileMsTotal;
  }

  private async compile(label: string, code: string): Promise<GPUComputePipeline> {
    dumpShader(label, code);
    const start = performance.now();
    try {
      return await this.compileModule(label, code);
    } finally {
      this.compileMsTotal += performance.now() - start;
    }
  }

  private async compileModule(label: string, code: string): Promise<GPUComputePipeline> {
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ label, code });
    const moduleError = await this.device.popErrorScope();
    if (moduleError) {
      const info = await module.getCompilationInfo();
      const lines = info.messages.map((m) => `  ${m.type} at ${m.lineNum}:${m.linePos}: ${m.message}`).join('\n');
      throw new Error(`WGSL compilation of ${label} failed: ${moduleError.message}\n${lines}`);
    }
    try {
      return await awaitGpu(
        this.device.createComputePipelineAsync({ label, layout: 'auto', compute: { module, entryPoint: 'main' } }),
      );
    } catch (e) {
      throw new Error(`Creating the pipeline for ${label} failed: ${(e as Error).message}`);
    }
  }

  createBuffer(label: string, size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    this.assertAlive();
    const buffer = this.device.createBuffer({ label, size: Math.max(16, Math.ceil(size / 4) * 4), usage });
    this.liveBuffers.add(buffer);
    return buffer;
  }

  /** A storage buffer filled with `data` (padded to 4 bytes). */
  storageBuffer(label: string, data: ArrayBufferView | number, extraUsage: GPUBufferUsageFlags = 0): GPUBuffer {
    const size = typeof data === 'number' ? data : data.byteLength;
    const buffer = this.createBuffer(
      label,
      size,
      GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | extraUsage,
    );
    if (typeof data !== 'number') this.write(buffer, data);
    return buffer;
  }

  uniformBuffer(label: string, words: ArrayBuffer): GPUBuffer {
    const buffer = this.createBuffer(label, words.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    this.device.queue.writeBuffer(buffer, 0, words);
    return buffer;
  }

  /** Writes `data` at `offset`; lengths not a multiple of 4 are padded with zeros as writeBuffer requires. */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 === 0) {
      this.device.queue.writeBuffer(buffer, offset, bytes as Uint8Array<ArrayBuffer>);
    } else {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      this.device.queue.writeBuffer(buffer, offset, padded);
    }
  }

  destroyBuffer(buffer: GPUBuffer): void {
    if (this.liveBuffers.delete(buffer)) buffer.destroy();
  }

  /**
   * Returns the memory of destroyed buffers (and of finished uploads' staging) to the system now. Dawn frees
   * them only once a submission made after they were released completes, so one empty submission is made
   * and waited for.
   */
  async reclaimDestroyed(): Promise<void> {
    this.assertAlive();
    this.device.queue.submit([this.device.createCommandEncoder({ label: 'reclaim' }).finish()]);
    await awaitGpu(this.device.queue.onSubmittedWorkDone());
  }

  bindGroup(label: string, pipeline: GPUComputePipeline, buffers: GPUBuffer[]): GPUBindGroup {
    return this.device.createBindGroup({
      label,
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
  }

  /**
   * Runs dispatches in one command submission (one compute pass), after queuing `writes`, and reads
   * back `reads` (byte counts from the start of each buffer) once at the end.
   */
  async run(
    label: string,
    dispatches: readonly Dispatch[],
    reads: readonly { buffer: GPUBuffer; bytes: number }[] = [],
  ): Promise<ArrayBuffer[]> {
    this.assertAlive();
    const device = this.device;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const encoder = device.createCommandEncoder({ label });
    const pass = encoder.beginComputePass({ label });
    for (const d of dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(...d.workgroups);
    }
    pass.end();
    const staging = reads.map((r) => {
      const buffer = device.createBuffer({
        label: `${label}.readback`,
        size: Math.ceil(r.bytes / 4) * 4,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      encoder.copyBufferToBuffer(r.buffer, 0, buffer, 0, buffer.size);
      return buffer;
    });
    device.queue.submit([encoder.finish()]);
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    try {
      if (validation) throw new Error(`GPU validation error while running ${label}: ${validation.message}`);
      if (oom) throw new Error(`The GPU ran out of memory while running ${label}: ${oom.message}`);
      const results: ArrayBuffer[] = [];
      for (const buffer of staging) {
        await awaitGpu(buffer.mapAsync(GPUMapMode.READ));
        this.assertAlive();
        results.push(buffer.getMappedRange().slice(0));
        buffer.unmap();
      }
      return results;
    } catch (e) {
      this.assertAlive();
      throw e;
    } finally {
      for (const buffer of staging) buffer.destroy();
    }
  }

  /**
   * Runs dispatches like `run`, each in its own compute pass with timestamp queries, and returns every
   * dispatch's GPU time. Needs the timestamp-query feature.
   */
  async profile(label: string, dispatches: readonly Dispatch[]): Promise<{ dispatch: Dispatch; ms: number }[]> {
    this.assertAlive();
    if (!this.hasTimestamps) return this.profileByWallClock(label, dispatches);
    const device = this.device;
    const results: { dispatch: Dispatch; ms: number }[] = [];
    const perSet = 2048; // timestamps per query set (a query set holds at most 4096)
    for (let first = 0; first < dispatches.length; first += perSet / 2) {
      const chunk = dispatches.slice(first, first + perSet / 2);
      const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * chunk.length });
      const resolved = device.createBuffer({
        size: 16 * chunk.length,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      const readback = device.createBuffer({
        size: 16 * chunk.length,
        usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ,
      });
      try {
        const encoder = device.createCommandEncoder({ label: `${label}.profile` });
        chunk.forEach((d, i) => {
          const pass = encoder.beginComputePass({
            label: d.label,
            timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 },
          });
          pass.setPipeline(d.pipeline);
          pass.setBindGroup(0, d.bindGroup);
          pass.dispatchWorkgroups(...d.workgroups);
          pass.end();
        });
        encoder.resolveQuerySet(querySet, 0, 2 * chunk.length, resolved, 0);
        encoder.copyBufferToBuffer(resolved, 0, readback, 0, resolved.size);
        device.queue.submit([encoder.finish()]);
        await awaitGpu(readback.mapAsync(GPUMapMode.READ));
        const ns = new BigUint64Array(readback.getMappedRange().slice(0));
        readback.unmap();
        chunk.forEach((dispatch, i) => {
          results.push({ dispatch, ms: Number(ns[2 * i + 1]! - ns[2 * i]!) / 1e6 });
        });
      } finally {
        querySet.destroy();
        resolved.destroy();
        readback.destroy();
      }
    }
    return results;
  }

  /**
   * Times each dispatch as one submit awaited with onSubmittedWorkDone, on the wall clock: for adapters
   * without timestamp queries (Chromium's OpenGL ES backend). Each figure includes one submit's overhead.
   */
  private async profileByWallClock(
    label: string,
    dispatches: readonly Dispatch[],
  ): Promise<{ dispatch: Dispatch; ms: number }[]> {
    const queue = this.device.queue;
    await awaitGpu(queue.onSubmittedWorkDone());
    const results: { dispatch: Dispatch; ms: number }[] = [];
    for (const dispatch of dispatches) {
      const encoder = this.device.createCommandEncoder({ label: `${label}.profile` });
      const pass = encoder.beginComputePass({ label: dispatch.label });
      pass.setPipeline(dispatch.pipeline);
      pass.setBindGroup(0, dispatch.bindGroup);
      pass.dispatchWorkgroups(...dispatch.workgroups);
      pass.end();
      const start = performance.now();
      queue.submit([encoder.finish()]);
      await awaitGpu(queue.onSubmittedWorkDone());
      results.push({ dispatch, ms: performance.now() - start });
    }
    return results;
  }

  /** Destroys every buffer this Gpu made, and the device itself when the engine created it. */
  destroy(): void {
    for (const buffer of this.liveBuffers) buffer.destroy();
    this.liveBuffers.clear();
    this.zeroBuffer = undefined;
    this.pipelines.clear();
    if (this.owned) this.device.destroy();
  }
}

/** Packs uniform parameters: integers as u32, `{f: x}` as f32. */
export function uniformWords(values: readonly (number | { f: number })[]): ArrayBuffer {
  const words = new ArrayBuffer(Math.max(16, Math.ceil(values.length / 4) * 16));
  const u = new Uint32Array(words);
  const f = new Float32Array(words);
  values.forEach((v, i) => {
    if (typeof v === 'number') u[i] = v;
    else f[i] = v.f;
  });
  return words;
}

// WHYLESION_DUMP_WGSL=dir writes every generated shader there (Node only; a no-op elsewhere).
function dumpShader(label: string, code: string): void {
  const proc = (
    globalThis as { process?: { env?: Record<string, string | undefined>; getBuiltinModule?: (m: string) => unknown } }
  ).process;
  const dir = proc?.env?.WHYLESION_DUMP_WGSL;
  if (!dir || !proc?.getBuiltinModule) return;
  const fs = proc.getBuiltinModule('node:fs') as typeof import('node:fs');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(`${dir}/${label.replace(/[^\w.=,-]+/g, '_')}.wgsl`, code);
}
