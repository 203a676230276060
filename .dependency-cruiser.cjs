/**
 * The layers of src/, bottom first: a module may import its own layer and the ones before it, never one
 * after it, so no two folders import each other. `npm test` runs this (npm run lint:layers); ARCHITECTURE.md
 * explains each layer. Type-only imports count too.
 */
const LAYERS = [
  ['base', 'src/(errors|assets)\\.ts$'],
  ['platform', 'src/platform/'],
  ['runtime', 'src/runtime/'],
  ['kernels', 'src/kernels/'],
  ['graph', 'src/graph/'],
  ['model', 'src/model/'],
  ['io', 'src/io/'],
  ['tokenizer', 'src/tokenizer/'],
  ['image', 'src/image/'],
  ['families', 'src/families/'],
  ['api', 'src/api/'],
  ['concepts', 'src/concepts/'],
  ['parity', 'src/parity/'],
  ['eval', 'src/eval/'],
  ['search', 'src/search/'],
  ['serve', 'src/serve/'],
  ['cli', 'src/cli/'],
  ['entry', 'src/(index|web)\\.ts$'],
];

const anyOf = (layers) => `^(${layers.map(([, path]) => path).join('|')})`;

module.exports = {
  forbidden: [
    ...LAYERS.slice(0, -1).map(([name, path], i) => ({
      name: `${name}-imports-a-higher-layer`,
      comment: `src/${name} sits below ${LAYERS.slice(i + 1).map(([n]) => n).join(', ')}; move the shared code down or pass it in.`,
      severity: 'error',
      from: { path: `^${path}` },
      to: { path: anyOf(LAYERS.slice(i + 1)) },
    })),
    {
      name: 'outside-the-layers',
      comment: 'Every module in src/ belongs to one layer in .dependency-cruiser.cjs; add a new folder there.',
      severity: 'error',
      from: { path: '^src/', pathNot: anyOf(LAYERS) },
      to: {},
    },
    {
      name: 'no-circular',
      comment: 'Modules that import each other, even within one layer, make the order of evaluation fragile.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      from: {},
      // A types reference and the browser build's generated module resolve outside Node's rules.
      to: { couldNotResolve: true, pathNot: '^(@webgpu/types|virtual:clip-merges)$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.d\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
