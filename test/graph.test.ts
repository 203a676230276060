import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpu } from '../src/runtime/gpu.js';
import * as K from '../src/kernels/index.js';
import { layerNormRef } from '../src/kernels/layernorm/reference.js';
import { matmulRef } from '../src/kernels/matmul/reference.js';
import { GraphBuilder, Tensor, type Graph } from '../src/graph/graph.js';
import { planMemory } from '../src/graph/memory.js';
import { Executor } from '../src/graph/executor.js';
import { randomArray, relativeError } from './helpers.js';

/**
 * A pre-norm residual MLP stack, x ← x + W2·gelu(W1·ln(x)), shaped like a transformer block's MLP half:
 * each block's ln output and hidden rows are tensors of their own, the residual stream one tensor.
 */
interface Weights {
  gain: GPUBuffer;
  shift: GPUBuffer;
  w1: GPUBuffer;
  b1: GPUBuffer;
  w2: GPUBuffer;
}
const WIDTH = 16,
  HIDDEN = 64,
  BLOCKS = 3;

function stack(rows: number, blocks: Weights[]): Graph {
  const g = new GraphBuilder(`stack[rows=${rows}]`);
  const input = g.input('x0', [rows, WIDTH]);
  const x = g.tensor('x', [rows, WIDTH]);
  const out = g.output(g.tensor('out', [rows, WIDTH]));
  g.op('gatherRows', 'copy_in', {
    x: input,
    index: g.constant(
      'rows',
      Uint32Array.from({ length: rows }, (_, i) => i),
    ),
    y: x,
    rows,
    width: WIDTH,
  });
  blocks.forEach((b, i) => {
    const h = g.tensor(`b${i}.ln`, [rows, WIDTH]);
    const hidden = g.tensor(`b${i}.hidden`, [rows, HIDDEN]);
    g.op('layerNorm', `b${i}.ln`, { x, gain: b.gain, shift: b.shift, y: h, rows, cols: WIDTH });
    g.op('matmul', `b${i}.fc`, {
      x: h,
      w: b.w1,
      bias: b.b1,
      y: hidden,
      M: rows,
      N: HIDDEN,
      K: WIDTH,
      activation: 'gelu',
    });
    g.op('matmul', `b${i}.proj`, { x: hidden, w: b.w2, y: x, M: rows, N: WIDTH, K: HIDDEN, accumulate: true });
    g.checkpoint(`b${i}`, x);
  });
  g.op('layerNorm', 'ln_out', { x, gain: blocks[0]!.gain, shift: blocks[0]!.shift, y: out, rows, cols: WIDTH });
  return g.finish();
}

/** Lifetimes recomputed from the graph's definition: [first op, last op], inputs from -1, outputs to the end. */
function lifetimes(graph: Graph): Map<Tensor, [number, number]> {
  const lives = new Map<Tensor, [number, number]>();
  const touch = (t: Tensor, at: number): void => {
    const [f, l] = lives.get(t) ?? [at, at];
    lives.set(t, [Math.min(f, at), Math.max(l, at)]);
  };
  graph.ops.forEach((op, i) => {
    for (const v of Object.values(op.args)) if (v instanceof Tensor) touch(v, i);
  });
  graph.inputs.forEach((t) => {
    touch(t, -1);
  });
  graph.outputs.forEach((t) => {
    touch(t, graph.ops.length);
  });
  return lives;
}

describe('activation memory plan', () => {
  const fake = {} as GPUBuffer;
  const weights = Array.from({ length: BLOCKS }, () => ({ gain: fake, shift: fake, w1: fake, b1: fake, w2: fake }));

  it('never gives one slot to two tensors live at once, and sizes each slot for its largest tensor', () => {
    for (const rows of [1, 7, 300]) {
      const graph = stack(rows, weights);
      const plan = planMemory(graph);
      const lives = lifetimes(graph);
      const constants = new Set(graph.constants.map((c) => c.tensor));
      for (const [a, [af, al]] of lives) {
        if (constants.has(a)) {
          expect(plan.slotOf[a.id]).toBe(-1);
          continue;
        }
        expect(plan.slotBytes[plan.slotOf[a.id]!]).toBeGreaterThanOrEqual(a.bytes);
        for (const [b, [bf, bl]] of lives) {
          if (a === b || constants.has(b) || plan.slotOf[a.id] !== plan.slotOf[b.id]) continue;
          expect(al < bf || bl < af, `${a.name} and ${b.name} share slot ${plan.slotOf[a.id]}`).toBe(true);
        }
      }
    }
  });

  it("keeps an op's input and output apart even where one ends as the other begins", () => {
    const g = new GraphBuilder('chain');
    const a = g.input('a', [1, 16]),
      b = g.tensor('b', [1, 16]),
      c = g.output(g.tensor('c', [1, 16])),
      d = g.tensor('d', [1, 16]);
    g.op('layerNorm', 'ab', { x: a, gain: fake, shift: fake, y: b, rows: 1, cols: 16 });
    g.op('layerNorm', 'bc', { x: b, gain: fake, shift: fake, y: c, rows: 1, cols: 16 });
    g.op('layerNorm', 'cd', { x: c, gain: fake, shift: fake, y: d, rows: 1, cols: 16 });
    const { slotOf, slotBytes } = planMemory(g.finish());
    // a ends as b begins, b as c begins; c (the output) lives to the end, so d takes b's slot.
    expect([slotOf[a.id], slotOf[b.id], slotOf[c.id], slotOf[d.id]]).toEqual([0, 1, 0, 1]);
    expect(slotBytes).toEqual([256, 256]);
  });

  it("lets the blocks' short-lived tensors share: slots hold far less than the tensors", () => {
    const graph = stack(300, weights);
    const plan = planMemory(graph);
    const tensorBytes = graph.tensors
      .filter((t) => !graph.constants.some((c) => c.tensor === t))
      .reduce((s, t) => s + t.bytes, 0);
    const slotTotal = plan.slotBytes.reduce((s, b) => s + b, 0);
    // Live at once at most: x, one block's ln and hidden rows (the input and output each share a slot with them).
    expect(slotTotal).toBeLessThanOrEqual(300 * 4 * (WIDTH + WIDTH + HIDDEN) + 256 * plan.slotBytes.length);
    expect(slotTotal).toBeLessThan(tensorBytes / 2);
    expect([...plan.slotBytes]).toEqual([...plan.slotBytes].sort((a, b) => b - a));
  });
});

describe('executor', () => {
  let gpu: Gpu;
  let policy: K.KernelPolicy;
  let scope: K.Scope;
  const host = Array.from({ length: BLOCKS }, (_, i) => ({
    gain: randomArray(WIDTH, 10 + i, 0.2).map((v) => 1 + v),
    shift: randomArray(WIDTH, 20 + i, 0.1),
    w1: randomArray(HIDDEN * WIDTH, 30 + i, 1 / Math.sqrt(WIDTH)),
    b1: randomArray(HIDDEN, 40 + i, 0.1),
    w2: randomArray(WIDTH * HIDDEN, 50 + i, 1 / Math.sqrt(HIDDEN)),
  }));
  let weights: Weights[];
  beforeAll(async () => {
    gpu = await Gpu.create();
    policy = K.KernelPolicy.create(gpu);
    scope = new K.Scope(policy);
    weights = host.map((h, i) => ({
      gain: scope.storage(`gain${i}`, h.gain),
      shift: scope.storage(`shift${i}`, h.shift),
      w1: scope.storage(`w1.${i}`, h.w1),
      b1: scope.storage(`b1.${i}`, h.b1),
      w2: scope.storage(`w2.${i}`, h.w2),
    }));
  });
  afterAll(() => {
    scope.destroy();
    gpu.destroy();
  });

  /** The stack on the CPU: every block's residual stream, then the output. */
  function reference(x0: Float32Array, rows: number): { blocks: Float32Array[]; out: Float32Array } {
    let x = x0;
    const blocks: Float32Array[] = [];
    for (const h of host) {
      const hidden = matmulRef(layerNormRef(x, h.gain, h.shift, rows, WIDTH), h.w1, rows, HIDDEN, WIDTH, {
        bias: h.b1,
        activation: 'gelu',
      });
      x = matmulRef(hidden, h.w2, rows, WIDTH, HIDDEN, { residual: x });
      blocks.push(x);
    }
    return { blocks, out: layerNormRef(x, host[0]!.gain, host[0]!.shift, rows, WIDTH) };
  }

  it('runs plans of several batch sizes in one arena sized by the largest', async () => {
    const executor = new Executor(policy);
    const sizes = [5, 300, 1, 300, 17];
    const arena: number[] = [];
    for (const rows of sizes) {
      const x0 = randomArray(rows * WIDTH, rows, 1);
      const program = executor.program(`stack/${rows}`, () => stack(rows, weights));
      const [out] = await executor.run(program, [x0]);
      if (out === undefined) throw new Error('missing out');
      expect(relativeError(new Float32Array(out), reference(x0, rows).out)).toBeLessThan(1e-5);
      arena.push(executor.memory.arenaBytes);
    }
    const largest = planMemory(stack(300, weights)).slotBytes.reduce((s, b) => s + b, 0);
    // It grows for the 300-row plan (past the 5-row plan's slots) and never again.
    expect(arena[1]).toBeGreaterThan(arena[0]!);
    expect(arena.slice(2)).toEqual([arena[1], arena[1], arena[1]]);
    expect(arena[1]).toBeLessThanOrEqual(largest + planMemory(stack(5, weights)).slotBytes.reduce((s, b) => s + b, 0));
    expect(executor.memory.plans).toBe(4);
    executor.clear();
    expect(executor.memory).toEqual({ arenaBytes: 0, planBytes: 0, plans: 0 });
  });

  it('evicts plans by bytes and plans an evicted one again with the same numbers', async () => {
    const executor = new Executor(policy, 1); // a budget no plan fits: only the plan in use stays
    const x0 = randomArray(9 * WIDTH, 3, 1);
    const [first] = await executor.run(
      executor.program('stack/9', () => stack(9, weights)),
      [x0],
    );
    if (first === undefined) throw new Error('missing first');
    await executor.run(
      executor.program('stack/4', () => stack(4, weights)),
      [randomArray(4 * WIDTH, 4, 1)],
    );
    expect(executor.memory.plans).toBe(1);
    const [again] = await executor.run(
      executor.program('stack/9', () => stack(9, weights)),
      [x0],
    );
    if (again === undefined) throw new Error('missing again');
    expect(new Float32Array(again)).toEqual(new Float32Array(first));
    executor.clear();
  });

  it("refuses a graph that reads a tensor before an op writes it (its slot holds another tensor's bytes)", async () => {
    const executor = new Executor(policy);
    const g = new GraphBuilder('unwritten');
    const x0 = g.input('x0', [4, WIDTH]);
    const y = g.tensor('y', [4, WIDTH]);
    const out = g.output(g.tensor('out', [4, WIDTH]));
    // y is accumulated into (its old value read) before anything wrote it.
    g.op('matmul', 'acc', { x: x0, w: weights[0]!.w1, y, M: 4, N: WIDTH, K: WIDTH, accumulate: true });
    g.op('layerNorm', 'ln', { x: y, gain: weights[0]!.gain, shift: weights[0]!.shift, y: out, rows: 4, cols: WIDTH });
    await expect(
      executor.run(
        executor.program('u', () => g.finish()),
        [randomArray(4 * WIDTH, 1, 1)],
      ),
    ).rejects.toThrow('acc: reads y before any op writes it');
    executor.clear();
  });

  it('refuses at plan build a graph whose tensors do not fit its ops, naming the op and the tensors', () => {
    const executor = new Executor(policy);
    const rows = 6;
    const [w] = weights;
    if (w === undefined) throw new Error('no weights');
    // One op with a K that disagrees with its input's width (as a wrong N upstream would make).
    const wrongK = () => {
      const g = new GraphBuilder('wrong-k');
      const x0 = g.input('x0', [rows, WIDTH]);
      const hidden = g.output(g.tensor('hidden', [rows, HIDDEN]));
      g.op('matmul', 'fc', { x: x0, w: w.w2, y: hidden, M: rows, N: HIDDEN, K: HIDDEN });
      return g.finish();
    };
    expect(() => executor.program('k', wrongK)).toThrow(
      'wrong-k: op fc (matmul): x is x0 [6, 16] f32, but the launch needs [6, 64] f32 (x = x0 [6, 16] f32, y = hidden [6, 64] f32)',
    );
    // An M that disagrees with the output's rows.
    const wrongM = () => {
      const g = new GraphBuilder('wrong-m');
      const x0 = g.input('x0', [rows, WIDTH]);
      const y = g.output(g.tensor('y', [rows - 1, WIDTH]));
      g.op('layerNorm', 'ln', { x: x0, gain: w.gain, shift: w.shift, y, rows, cols: WIDTH });
      return g.finish();
    };
    expect(() => executor.program('m', wrongM)).toThrow(
      /op ln \(layerNorm\): y is y \[5, 16\] f32, but the launch needs \[6, 16\] f32/,
    );
    // Float row indices where the kernel reads u32.
    const wrongDtype = () => {
      const g = new GraphBuilder('wrong-dtype');
      const x0 = g.input('x0', [rows, WIDTH]);
      const index = g.input('index', [2]);
      const y = g.output(g.tensor('y', [2, WIDTH]));
      g.op('gatherRows', 'pick', { x: x0, index, y, rows: 2, width: WIDTH });
      return g.finish();
    };
    expect(() => executor.program('d', wrongDtype)).toThrow(
      /op pick \(gatherRows\): index is index \[2\] f32, but the launch needs \[2\] u32/,
    );
    expect(executor.memory.plans).toBe(0);
    // Leading dimensions merge: [2, 3, 16] serves as [6, 16]; the same graph with it plans.
    const merged = () => {
      const g = new GraphBuilder('merged');
      const x0 = g.input('x0', [2, 3, WIDTH]);
      const y = g.output(g.tensor('y', [rows, WIDTH]));
      g.op('layerNorm', 'ln', { x: x0, gain: w.gain, shift: w.shift, y, rows, cols: WIDTH });
      return g.finish();
    };
    expect(executor.program('ok', merged).graph.label).toBe('merged');
    executor.clear();
  });

  it('reads every checkpoint back by name, as the reference computes it', async () => {
    const executor = new Executor(policy);
    const rows = 33;
    const x0 = randomArray(rows * WIDTH, 99, 1);
    const states = await executor.runCheckpoints(
      executor.program('stack', () => stack(rows, weights)),
      [x0],
    );
    const ref = reference(x0, rows);
    expect([...states.keys()]).toEqual(['b0', 'b1', 'b2']);
    ref.blocks.forEach((x, i) => {
      expect(relativeError(states.get(`b${i}`)!, x)).toBeLessThan(1e-5);
    });
    executor.clear();
  });
});
