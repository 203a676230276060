// No mutable state at module level in src/: state belongs to an instance (a Gpu, a Scope, a model) so that
// two of them never share it and it ends with them. Reads every src/**/*.ts through the TypeScript
// compiler and reports top-level `let`/`var`, top-level WeakMaps/WeakSets (only useful as caches), and
// any top-level const that code anywhere in src/ mutates (assigns into, or calls push, set, add, ...
// on). Mutation through a class's own methods is not seen. No GPU needed.
import { relative } from 'node:path';
import ts from 'typescript';
import { expect, it } from 'vitest';

/** Module state that is legitimately process-wide, each with why. */
const ALLOWED: Record<string, string> = {
  'src/platform/index.ts: let dawnGpu':
    "Dawn's create() object serves every device and must live as long as the process (it segfaults when collected): one memo, never grows",
  'src/platform/vector-width.ts: let vectorWidth':
    'llvmpipe reads LP_NATIVE_VECTOR_WIDTH once per process, when Dawn loads it; this records that one decision for `whylesion info`',
  'src/image/jpeg.ts: let ready':
    "mozjpeg's wasm module is initialised once per process by @jsquash/jpeg itself; this memoises that one init",
  'src/image/webp.ts: let ready':
    "libwebp's wasm module is initialised once per process by @jsquash/webp itself; this memoises that one init",
  'src/image/jpeg.ts: messages mutated':
    "that wasm module's single printErr callback (bound at its one init) collects libjpeg's messages for the decode in progress",
  'src/tokenizer/ftfy.ts: let upperCaseEntities': 'a lazily built table that is never changed after it is built',
  'src/eval/linear-kernel.ts: let compiled':
    'the lazily compiled (immutable) WebAssembly module of the linear probe kernel',
  'src/io/lock.ts: held mutated':
    'the lock files this process holds: the one process-wide exit handler removes them (a lock is per process by nature)',
  'src/io/durable.ts: let simulatedDiskLeft':
    "a fault-test hook's byte budget (WHYLESION_FAULT_DISK_BYTES): like a disk's free space, shared by every write of the process",
  'src/runtime/gpu-wait.ts: sleeper mutated':
    "the event loop is one per thread: one sleeper naps between its turns for every Gpu's pending waits",
  'src/cli/classify.ts: let readerGone':
    'stdout is one per process: once its reader has gone (EPIPE) every later print must stop',
};

const MUTATING_METHODS = new Set([
  'push',
  'pop',
  'shift',
  'unshift',
  'splice',
  'sort',
  'reverse',
  'fill',
  'copyWithin',
  'set',
  'add',
  'delete',
  'clear',
]);

function moduleStateFindings(): string[] {
  const root = process.cwd();
  const config = ts.getParsedCommandLineOfConfigFile(
    'tsconfig.json',
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(String(d.messageText));
      },
    },
  );
  if (!config) throw new Error('tsconfig.json could not be read');
  const files = config.fileNames.filter((f) => relative(root, f).startsWith('src/') && !f.endsWith('.d.ts'));
  expect(files.length).toBeGreaterThan(50);
  const program = ts.createProgram(files, config.options);
  const checker = program.getTypeChecker();
  const sources = files.map((f) => program.getSourceFile(f)!);
  const findings = new Set<string>();
  const topLevelConsts = new Map<ts.Symbol, string>();

  for (const source of sources) {
    const file = relative(root, source.fileName);
    for (const statement of source.statements) {
      if (!ts.isVariableStatement(statement)) continue;
      const isConst = (statement.declarationList.flags & ts.NodeFlags.Const) !== 0;
      for (const declaration of statement.declarationList.declarations) {
        const name = declaration.name.getText(source);
        if (!isConst) {
          findings.add(`${file}: let ${name}`);
          continue;
        }
        const init = declaration.initializer;
        if (init && ts.isNewExpression(init) && /^Weak(Map|Set)$/.test(init.expression.getText(source)))
          findings.add(`${file}: ${name} is a ${init.expression.getText(source)}`);
        const symbol = checker.getSymbolAtLocation(declaration.name);
        if (symbol) topLevelConsts.set(symbol, `${file}: ${name}`);
      }
    }
  }

  /** The top-level const an expression such as `NAME.a[i]` starts from, if any. */
  const rootConst = (expression: ts.Expression): string | undefined => {
    let e = expression;
    while (ts.isPropertyAccessExpression(e) || ts.isElementAccessExpression(e) || ts.isParenthesizedExpression(e))
      e = e.expression;
    if (!ts.isIdentifier(e)) return undefined;
    let symbol = checker.getSymbolAtLocation(e);
    if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
    return symbol ? topLevelConsts.get(symbol) : undefined;
  };
  const isMember = (e: ts.Expression) => ts.isPropertyAccessExpression(e) || ts.isElementAccessExpression(e);

  const visit = (node: ts.Node): void => {
    let target: ts.Expression | undefined;
    if (
      ts.isBinaryExpression(node) &&
      node.operatorToken.kind >= ts.SyntaxKind.FirstAssignment &&
      node.operatorToken.kind <= ts.SyntaxKind.LastAssignment &&
      isMember(node.left)
    )
      target = node.left;
    else if (
      (ts.isPrefixUnaryExpression(node) || ts.isPostfixUnaryExpression(node)) &&
      (node.operator === ts.SyntaxKind.PlusPlusToken || node.operator === ts.SyntaxKind.MinusMinusToken) &&
      isMember(node.operand)
    )
      target = node.operand;
    else if (ts.isDeleteExpression(node)) target = node.expression;
    else if (
      ts.isCallExpression(node) &&
      ts.isPropertyAccessExpression(node.expression) &&
      MUTATING_METHODS.has(node.expression.name.text)
    )
      target = node.expression.expression;
    const owner = target && rootConst(target);
    if (owner) findings.add(`${owner} mutated`);
    ts.forEachChild(node, visit);
  };
  for (const source of sources) visit(source);
  return [...findings].sort();
}

it('src/ keeps no mutable state at module level, except the allowlisted process-wide state', () => {
  const findings = moduleStateFindings();
  expect(findings.filter((f) => !(f in ALLOWED))).toEqual([]);
  // an allowlist entry whose state is gone must go too
  expect(Object.keys(ALLOWED).filter((a) => !findings.includes(a))).toEqual([]);
}, 60_000);
