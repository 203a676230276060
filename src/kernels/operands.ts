/**
 * What a launcher takes: for each buffer argument a graph tensor may fill, its shape and dtype as the
 * launch's sizes imply. Each kernel declares its rule beside its launcher; the executor checks a graph's
 * tensors with them when it builds a plan (graph/graph.ts: checkOperands).
 */

/** Element types of activations: floats (f16 two to a u32 word), and u32 ids and row indices. */
export type TensorDtype = 'f32' | 'f16' | 'u32';
export type FloatDtype = 'f32' | 'f16';
/** The float dtypes a kernel compiles for where it reads or writes activations (its define sets list both). */
export const FLOAT_DTYPES: readonly FloatDtype[] = ['f32', 'f16'];

/** A shape the launch needs; `null` is a dimension of any size (gather_rows' source rows). */
export interface Operand {
  shape: readonly (number | null)[];
  dtype: TensorDtype;
}

export type OperandRule<Args> = (args: Args) => Partial<Record<keyof Args & string, Operand>>;

export const f32Operand = (...shape: (number | null)[]): Operand => ({ shape, dtype: 'f32' });
/** An f32 or f16 operand: f16 only where the launch was asked for halves. */
export const floatOperand = (dtype: FloatDtype, ...shape: (number | null)[]): Operand => ({ shape, dtype });
export const u32Operand = (...shape: (number | null)[]): Operand => ({ shape, dtype: 'u32' });

/**
 * Why a tensor of this shape and dtype cannot serve as `want`, or undefined when it can. The tensor's
 * leading dimensions are merged down to the operand's rank first ([B, T, W] serves as [B·T, W]).
 */
export function operandMismatch(shape: readonly number[], dtype: TensorDtype, want: Operand): string | undefined {
  const rank = want.shape.length;
  const merged = shape.length >= rank ? [...shape.slice(shape.length - rank + 1)] : [...shape];
  if (shape.length >= rank) merged.unshift(shape.slice(0, shape.length - rank + 1).reduce((n, d) => n * d, 1));
  while (merged.length < rank) merged.unshift(1);
  const fits = want.shape.every((d, i) => d === null || d === merged[i]);
  if (fits && dtype === want.dtype) return undefined;
  return `the launch needs [${want.shape.map((d) => d ?? 'any').join(', ')}] ${want.dtype}`;
}
