import type { Dispatch, Gpu } from '../runtime/gpu.js';
import { trace } from '../platform/trace.js';
import * as K from '../kernels/index.js';
import { checkOperands, LAUNCHERS, Tensor, type Graph, type Op } from './graph.js';
import { planMemory, type MemoryPlan } from './memory.js';
import { present } from '../errors.js';

/**
 * Activation memory shared by every plan of one executor: slot i is a buffer as large as the largest
 * slot i any plan has needed. Forwards run one at a time, so one set of slots serves every batch size.
 */
class Arena {
  private slots: GPUBuffer[] = [];
  /** Bumped whenever a slot is replaced: plans bound to an older generation must bind again. */
  generation = 0;

  constructor(private readonly gpu: Gpu) {}

  /**
   * Grows slots to at least these sizes (never shrinks them). Slots too small are freed, and their memory
   * reclaimed, before the larger ones are made, so growing never holds both (ViT-L/14, a scratch probe that freed
   * the whole arena this way: the first 31-image forward after an 8-image one peaked 22 MB above its end state,
   * not 71; bench/README.md, activation memory).
   */
  async fit(slotBytes: readonly number[]): Promise<void> {
    const growing = slotBytes.flatMap((bytes, i) => (this.slots[i] && this.slots[i].size >= bytes ? [] : [i]));
    if (growing.length === 0) return;
    const replaced = growing.filter((i) => this.slots[i]);
    for (const i of replaced) this.gpu.destroyBuffer(this.slots[i]!);
    if (replaced.length > 0) await this.gpu.reclaimDestroyed();
    for (const i of growing) this.slots[i] = this.gpu.storageBuffer(`arena.slot${i}`, slotBytes[i]!);
    this.generation++;
  }

  slot(i: number): GPUBuffer {
    return present(this.slots[i], `arena slot ${i}`);
  }

  get bytes(): number {
    return this.slots.reduce((sum, b) => sum + b.size, 0);
  }

  release(): void {
    for (const b of this.slots) this.gpu.destroyBuffer(b);
    this.slots = [];
    this.generation++;
  }
}

/** A graph with its buffers bound: what one forward submits. */
interface Bound {
  generation: number;
  /** Plan-owned buffers: uniforms and constants. */
  scope: K.Scope;
  dispatches: Dispatch[];
  /** Buffer per tensor id. */
  buffers: GPUBuffer[];
  /** Dispatch count after each op (an op may launch several dispatches). */
  opEnds: number[];
  bytes: number;
}

/** A graph the executor has planned; bound to the arena when run. */
export interface Program {
  readonly key: string;
  readonly graph: Graph;
  readonly memory: MemoryPlan;
  bound?: Bound;
}

/** What the executor holds now. */
export interface ExecutorMemory {
  /** Activation arena, shared by all plans. */
  arenaBytes: number;
  /** Plan-owned buffers plus an estimate of each dispatch's bind group and uniform, over all cached plans. */
  planBytes: number;
  plans: number;
}

/** Counted per dispatch for its bind group and uniform allocation, which no API reports. */
const DISPATCH_OVERHEAD_BYTES = 512;
/** Default budget of planBytes: some hundred ViT forwards' worth of bind groups. */
const DEFAULT_PLAN_BUDGET_BYTES = 16 << 20;

/**
 * Runs graphs on one Gpu: plans each graph's activation memory once (./memory.ts), binds it to the shared
 * arena, and submits a forward as one command buffer. Plans are cached by key and evicted, least recently
 * used first, when their own bytes pass the budget; the arena stays sized for the largest plan seen.
 */
export class Executor {
  private readonly arena: Arena;
  private readonly programs = new Map<string, Program>();

  readonly gpu: Gpu;

  /** Plans bind their kernels under `policy` (family and tuning): the one the model's weights were laid out by. */
  constructor(
    readonly policy: K.KernelPolicy,
    private readonly planBudgetBytes = DEFAULT_PLAN_BUDGET_BYTES,
  ) {
    this.gpu = policy.gpu;
    this.arena = new Arena(policy.gpu);
  }

  /**
   * The program for `key`, recording its graph with `build` the first time; a graph whose tensors do not fit
   * its ops (shape or dtype) is refused here, before any memory is planned.
   */
  program(key: string, build: () => Graph): Program {
    let program = this.programs.get(key);
    if (program) {
      this.programs.delete(key); // re-insert: most recently used last
    } else {
      const graph = build();
      checkOperands(graph);
      program = { key, graph, memory: planMemory(graph) };
    }
    this.programs.set(key, program);
    return program;
  }

  /** Runs `program` after writing `inputs` (in graph.inputs order); returns each output's bytes. */
  async run(program: Program, inputs: readonly ArrayBufferView[]): Promise<ArrayBuffer[]> {
    const bound = await this.prepare(program, inputs);
    const reads = program.graph.outputs.map((t) => ({
      buffer: present(bound.buffers[t.id], `buffer of output ${t.id}`),
      bytes: t.bytes,
    }));
    const outputs = await this.gpu.run(program.graph.label, bound.dispatches, reads);
    trace('forward done', program.graph.label);
    return outputs;
  }

  /**
   * Debug forward: runs the program up to each checkpoint in turn (one submission per checkpoint) and
   * reads its tensor back, by name.
   */
  async runCheckpoints(program: Program, inputs: readonly ArrayBufferView[]): Promise<Map<string, Float32Array>> {
    const bound = await this.prepare(program, inputs);
    const states = new Map<string, Float32Array>();
    let start = 0;
    for (const c of program.graph.checkpoints) {
      const end = c.after === 0 ? 0 : present(bound.opEnds[c.after - 1], `end of op ${c.after - 1}`);
      const [bytes] = await this.gpu.run(c.name, bound.dispatches.slice(start, end), [
        { buffer: bound.buffers[c.tensor.id]!, bytes: c.bytes },
      ]);
      states.set(c.name, new Float32Array(present(bytes, `bytes of ${c.name}`)));
      start = end;
    }
    return states;
  }

  /** Times every dispatch of the program with timestamp queries. */
  async profile(program: Program, inputs: readonly ArrayBufferView[]): Promise<{ dispatch: Dispatch; ms: number }[]> {
    const bound = await this.prepare(program, inputs);
    return this.gpu.profile(program.graph.label, bound.dispatches);
  }

  /** The kernels the program runs, in order (what the rules and tuning chose). */
  async kernels(program: Program): Promise<string[]> {
    return (await this.bind(program)).dispatches.map((d) => d.kernel);
  }

  get memory(): ExecutorMemory {
    let planBytes = 0;
    for (const p of this.programs.values()) planBytes += p.bound?.bytes ?? 0;
    return { arenaBytes: this.arena.bytes, planBytes, plans: this.programs.size };
  }

  /** Drops every plan and the arena; later runs plan again (e.g. with new kernel choices). */
  clear(): void {
    for (const p of this.programs.values()) this.unbind(p);
    this.programs.clear();
    this.arena.release();
  }

  private async prepare(program: Program, inputs: readonly ArrayBufferView[]): Promise<Bound> {
    const graph = program.graph;
    if (inputs.length !== graph.inputs.length)
      throw new Error(`${graph.label}: ${inputs.length} inputs given, ${graph.inputs.length} expected`);
    const bound = await this.bind(program);
    inputs.forEach((data, i) => {
      const t = graph.inputs[i]!;
      if (data.byteLength > t.bytes)
        throw new Error(`${graph.label}: input ${t.name} holds ${data.byteLength} bytes, more than its ${t.bytes}`);
      this.gpu.write(bound.buffers[t.id]!, data);
    });
    return bound;
  }

  private async bind(program: Program): Promise<Bound> {
    await this.arena.fit(program.memory.slotBytes);
    if (program.bound?.generation === this.arena.generation) return program.bound;
    const firstBinding = program.bound === undefined;
    const pipelinesBefore = this.gpu.pipelineCount;
    const compileMsBefore = this.gpu.compileMs;
    this.unbind(program);
    const { graph, memory } = program;
    const scope = new K.Scope(this.policy);
    try {
      const buffers: GPUBuffer[] = [];
      for (const t of graph.tensors)
        if (memory.slotOf[t.id]! >= 0) buffers[t.id] = this.arena.slot(memory.slotOf[t.id]!);
      for (const c of graph.constants) buffers[c.tensor.id] = scope.storage(c.tensor.name, c.data);
      // Pipelines compile concurrently here.
      const launched = await Promise.all(graph.ops.map((op) => launch(scope, op, buffers)));
      const dispatches: Dispatch[] = [];
      const opEnds: number[] = [];
      for (const d of launched) {
        dispatches.push(...(Array.isArray(d) ? d : [d]));
        opEnds.push(dispatches.length);
      }
      if (firstBinding) checkWritesBeforeReads(graph, launched);
      const bytes = scope.buffers.reduce((sum, b) => sum + b.size, 0) + DISPATCH_OVERHEAD_BYTES * dispatches.length;
      program.bound = { generation: this.arena.generation, scope, dispatches, buffers, opEnds, bytes };
    } catch (e) {
      scope.destroy();
      throw e;
    }
    trace(
      'plan bound',
      `${graph.label} (${this.gpu.pipelineCount - pipelinesBefore} new pipelines, ${((this.gpu.compileMs - compileMsBefore) / 1000).toFixed(1)} s summed compile time, ${this.gpu.pipelineCount} in all)`,
    );
    this.evictOver(program);
    return program.bound;
  }

  /** Evicts least recently used plans other than `keep` while plan bytes pass the budget. */
  private evictOver(keep: Program): void {
    for (const [key, p] of this.programs) {
      if (this.memory.planBytes <= this.planBudgetBytes) return;
      if (p === keep) continue;
      this.unbind(p);
      this.programs.delete(key);
    }
  }

  private unbind(program: Program): void {
    program.bound?.scope.destroy();
    program.bound = undefined;
  }
}

/**
 * Slots are shared, so a tensor read before any op writes it would read another tensor's bytes: with the
 * kernels' declared bindings (which arguments each reads and writes), refuse such a graph.
 */
function checkWritesBeforeReads(graph: Graph, launched: readonly (Dispatch | Dispatch[])[]): void {
  const written = new Set<Tensor>([...graph.inputs, ...graph.constants.map((c) => c.tensor)]);
  graph.ops.forEach((op, i) => {
    const args = op.args as Record<string, unknown>;
    const kernels = [present(launched[i], `dispatch of op ${i}`)].flat().map((d) => d.kernel);
    for (const kernel of kernels) {
      for (const arg of K.kernelReads(kernel, { accumulate: args.accumulate === true })) {
        const value = args[arg];
        if (value instanceof Tensor && !written.has(value))
          throw new Error(`${op.label}: reads ${value.name} before any op writes it`);
      }
    }
    for (const kernel of kernels) {
      for (const arg of K.kernelWrites(kernel)) if (args[arg] instanceof Tensor) written.add(args[arg]);
    }
  });
}

function launch(scope: K.Scope, op: Op, buffers: readonly GPUBuffer[]): Promise<Dispatch | Dispatch[]> {
  const args: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(op.args)) {
    if (!(value instanceof Tensor)) {
      args[name] = value;
    } else if (buffers[value.id]) {
      args[name] = buffers[value.id];
    } else {
      throw new Error(`${op.label}: tensor ${value.name} has no buffer`);
    }
  }
  const launcher = LAUNCHERS[op.kind] as (
    scope: K.Scope,
    label: string,
    args: unknown,
  ) => Promise<Dispatch | Dispatch[]>;
  return launcher(scope, op.label, args);
}
