import * as K from '../kernels/index.js';

/**
 * A model's forward as data: activations are named tensors with a byte size and no buffer yet; ops name a
 * kernel launcher and its arguments, where an activation stands in for a GPU buffer. The executor
 * (./executor.ts) decides which arena slot holds each tensor from when it is first and last used.
 */
export class Tensor {
  constructor(
    readonly id: number,
    readonly name: string,
    readonly bytes: number,
  ) {}
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

  /** An activation of `bytes` bytes. */
  tensor(name: string, bytes: number): Tensor {
    const tensor = new Tensor(this.tensors.length, name, bytes);
    this.tensors.push(tensor);
    return tensor;
  }

  input(name: string, bytes: number): Tensor {
    const tensor = this.tensor(name, bytes);
    this.inputs.push(tensor);
    return tensor;
  }

  output(tensor: Tensor): Tensor {
    this.outputs.push(tensor);
    return tensor;
  }

  constant(name: string, data: Uint32Array | Float32Array): Tensor {
    const tensor = this.tensor(name, data.byteLength);
    this.constants.push({ tensor, data });
    return tensor;
  }

  op<Kind extends OpKind>(kind: Kind, label: string, args: OpArgs<Kind>): void {
    this.ops.push({ kind, label, args } as Op);
  }

  /** Names `tensor`'s first `bytes` bytes as it stands after the ops recorded so far (debug readback). */
  checkpoint(name: string, tensor: Tensor, bytes = tensor.bytes): void {
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
