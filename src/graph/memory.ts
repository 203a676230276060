import { tensorsOf, type Graph } from './graph.js';

/** Where a graph's activations live: arena slot per tensor id (-1: none, e.g. constants), and each slot's size. */
export interface MemoryPlan {
  slotOf: Int32Array;
  /** Bytes per slot, largest first: slot i of every plan is its i-th largest, so plans of one arena line up. */
  slotBytes: number[];
}

/** Slots are sized in whole multiples of this (WebGPU's usual storage offset alignment). */
const SLOT_ALIGNMENT = 256;

/**
 * Assigns every activation to a slot such that tensors sharing a slot are never live at once. A tensor
 * lives from the first op that names it to the last (inputs from the start, outputs to the end, checkpoint
 * tensors at least until their readback). Largest tensors first, each into the first slot free for its
 * whole lifetime (greedy interval colouring): slots come out largest first, and the big short-lived
 * buffers of a transformer block (qkv, the MLP hidden rows) end up sharing one.
 */
export function planMemory(graph: Graph): MemoryPlan {
  const count = graph.tensors.length;
  // Op indices, with -1 for "before the first op" (inputs); untouched tensors keep first > last.
  const first = new Int32Array(count).fill(0x7fffffff);
  const last = new Int32Array(count).fill(-2);
  const touch = (id: number, at: number): void => {
    first[id] = Math.min(first[id]!, at);
    last[id] = Math.max(last[id]!, at);
  };
  graph.ops.forEach((op, i) => {
    for (const t of tensorsOf(op)) touch(t.id, i);
  });
  for (const t of graph.inputs) touch(t.id, -1);
  for (const t of graph.outputs) touch(t.id, graph.ops.length);
  for (const c of graph.checkpoints) touch(c.tensor.id, c.after - 1);
  const isConstant = new Set(graph.constants.map((c) => c.tensor.id));

  const slotOf = new Int32Array(count).fill(-1);
  const slotBytes: number[] = [];
  const slotLives: [number, number][][] = [];
  const order = graph.tensors
    .filter((t) => first[t.id]! <= last[t.id]! && !isConstant.has(t.id))
    .sort((a, b) => b.bytes - a.bytes || a.id - b.id);
  for (const t of order) {
    const from = first[t.id]!;
    const to = last[t.id]!;
    let slot = slotLives.findIndex((lives) => lives.every(([f, l]) => to < f || from > l));
    if (slot === -1) {
      slot = slotLives.length;
      slotLives.push([]);
      slotBytes.push(Math.ceil(Math.max(t.bytes, 4) / SLOT_ALIGNMENT) * SLOT_ALIGNMENT);
    }
    slotLives[slot]!.push([from, to]);
    slotOf[t.id] = slot;
  }
  return { slotOf, slotBytes };
}
