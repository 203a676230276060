import * as K from '../kernels/index.js';

/**
 * A model's forward as data: activations are named tensors with a shape, a dtype and no buffer yet; ops name
 * a kernel launcher and its arguments, where an activation stands in for a GPU buffer. The executor
 * (./executor.ts) checks every op's tensors against what its kernel takes (K.OPERANDS), then decides which
 * arena slot holds each tensor from when it is first and last used.
 */
export class Tensor {
  constructor(
    readonly id: number,
    readonly name: string,
    readonly shape: readonly number[],
    readonly dtype: K.TensorDtype,
  ) {}

  /** f32 and u32 are 4 bytes an element, f16 2 (rounded up to whole u32 words, as the kernels store them). */
  get bytes(): number {
    const count = this.shape.reduce((n, d) => n * d, 1);
    return this.dtype === 'f16' ? 4 * Math.ceil(count / 2) : 4 * count;
  }

  /** `name [2, 257, 1024] f32`, as errors name it. */
  toString(): string {
    return `${this.name} [${this.shape.join(', ')}] ${this.dtype}`;
  }
}

/** The kernel launchers a graph can name (src/kernels/index.ts), by op kind. */
export const LAUNCHERS = {
  matmul: K.matmul,
  layerNorm: K.layerNorm,
  attention: K.attention,
  elementwise: K.elementwise,
  embedTokens: K.embedTokens,
  patchify: K.patchify,
  visionTokens: K.visionTokens,
  gatherRows: K.gatherRows,
  meanRows: K.meanRows,
  attentionLastRow: K.attentionLastRow,
};

export type OpKind = keyof typeof LAUNCHERS;

/** What each launcher takes, by op kind: the shape and dtype of every buffer argument a tensor may fill. */
export const OPERANDS: { [Kind in OpKind]: K.OperandRule<Parameters<(typeof LAUNCHERS)[Kind]>[2]> } = {
  matmul: K.matmulOperands,
  layerNorm: K.layerNormOperands,
  attention: K.attentionOperands,
  elementwise: K.elementwiseOperands,
  embedTokens: K.embedTokensOperands,
  patchify: K.patchifyOperands,
  visionTokens: K.visionTokensOperands,
  gatherRows: K.gatherRowsOperands,
  meanRows: K.meanRowsOperands,
  attentionLastRow: K.attentionLastRowOperands,
};
type LauncherArgs<Kind extends OpKind> = Parameters<(typeof LAUNCHERS)[Kind]>[2];

/** A launcher's arguments with an activation Tensor allowed wherever it takes a GPU buffer. */
export type OpArgs<Kind extends OpKind> = {
  [P in keyof LauncherArgs<Kind>]: LauncherArgs<Kind>[P] extends GPUBuffer ? GPUBuffer | Tensor : LauncherArgs<Kind>[P];
};

export interface Op<Kind extends OpKind = OpKind> {
  kind: Kind;
  label: string;
  args: OpArgs<Kind>;
}

/** A plan-owned constant buffer (e.g. the rows a shortcut keeps), made once per plan from `data`. */
export interface Constant {
  tensor: Tensor;
  data: Uint32Array | Float32Array;
}

/** A named state read back by a debug forward after ops[0..after) ran. */
export interface Checkpoint {
  name: string;
  after: number;
  tensor: Tensor;
  bytes: number;
}

export interface Graph {
  readonly label: string;
  readonly ops: readonly Op[];
  readonly tensors: readonly Tensor[];
  /** Written by the host before a run: live from the start. */
  readonly inputs: readonly Tensor[];
  /** Read back after a run: live to the end. */
  readonly outputs: readonly Tensor[];
  readonly constants: readonly Constant[];
  readonly checkpoints: readonly Checkpoint[];
}

/** Records a graph: tensors, constants and ops in execution order. */
export class GraphBuilder {
  private readonly ops: Op[] = [];
  private readonly tensors: Tensor[] = [];
  private readonly inputs: Tensor[] = [];
  private readonly outputs: Tensor[] = [];
  private readonly constants: Constant[] = [];
  private readonly checkpoints: Checkpoint[] = [];

  constructor(readonly label: string) {}

  /** An activation of this shape (f32 unless said: ids and row indices are u32, f16 activations between kernels that take them). */
  tensor(name: string, shape: readonly number[], dtype: K.TensorDtype = 'f32'): Tensor {
    const tensor = new Tensor(this.tensors.length, name, shape, dtype);
    this.tensors.push(tensor);
    return tensor;
  }

  input(name: string, shape: readonly number[], dtype: K.TensorDtype = 'f32'): Tensor {
    const tensor = this.tensor(name, shape, dtype);
    this.inputs.push(tensor);
    return tensor;
  }

  output(tensor: Tensor): Tensor {
    this.outputs.push(tensor);
    return tensor;
  }

  constant(name: string, data: Uint32Array | Float32Array): Tensor {
    const tensor = this.tensor(name, [data.length], data instanceof Uint32Array ? 'u32' : 'f32');
    this.constants.push({ tensor, data });
    return tensor;
  }

  op<Kind extends OpKind>(kind: Kind, label: string, args: OpArgs<Kind>): void {
    this.ops.push({ kind, label, args } as Op);
  }

  /** Names `tensor`'s first `bytes` bytes as it stands after the ops recorded so far (debug readback; f32 tensors only). */
  checkpoint(name: string, tensor: Tensor, bytes = tensor.bytes): void {
    if (tensor.dtype !== 'f32') throw new Error(`Checkpoint ${name}: ${tensor.toString()} is not f32`);
    this.checkpoints.push({ name, after: this.ops.length, tensor, bytes });
  }

  finish(): Graph {
    return {
      label: this.label,
      ops: this.ops,
      tensors: this.tensors,
      inputs: this.inputs,
      outputs: this.outputs,
      constants: this.constants,
      checkpoints: this.checkpoints,
    };
  }
}

/** The activation tensors an op's arguments name (constants included). */
export function tensorsOf(op: Op): Tensor[] {
  return Object.values(op.args).filter((v): v is Tensor => v instanceof Tensor);
}

/**
 * Refuses a graph whose op would read or write a tensor of another shape or dtype than its kernel takes
 * (an M/N/K mismatch between ops would otherwise give wrong numbers silently). Shapes compare with their
 * leading dimensions merged down to the kernel's rank: [B, T, W] serves as [B·T, W].
 */
export function checkOperands(graph: Graph): void {
  for (const op of graph.ops) {
    const args = op.args as Record<string, unknown>;
    const rule = OPERANDS[op.kind] as unknown as K.OperandRule<Record<string, unknown>>;
    for (const [arg, want] of Object.entries(rule(args)) as [string, K.Operand | undefined][]) {
      const value = args[arg];
      if (!want || !(value instanceof Tensor)) continue;
      const problem = K.operandMismatch(value.shape, value.dtype, want);
      if (!problem) continue;
      const tensors = Object.entries(args)
        .filter(([, v]) => v instanceof Tensor)
        .map(([name, v]) => `${name} = ${v}`)
        .join(', ');
      throw new Error(`${graph.label}: op ${op.label} (${op.kind}): ${arg} is ${value}, but ${problem} (${tensors})`);
    }
  }
}
