// The ONNX Runtime side of `npm run bench:peers`, in a child process: its native log (verbose, for the node
// placements) goes to a file the parent reads, its memory and threads are its own, and the parent alternates
// requests between our engine and this one. onnxruntime-node is loaded from the folder the parent installed it
// into (ORT_PREFIX), never from the package's dependencies.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

interface OrtTensor {
  dims: readonly number[];
  data: unknown;
}
interface OrtSession {
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
interface Ort {
  env: { versions: Record<string, string> };
  Tensor: new (type: string, data: Float32Array | BigInt64Array, dims: number[]) => OrtTensor;
  InferenceSession: {
    create(path: string, options: Record<string, unknown>): Promise<OrtSession>;
  };
}

export type WorkerRequest =
  | { type: 'create'; key: string; ep: 'cpu' | 'webgpu'; path: string; threads: number }
  | { type: 'run'; key: string; input: string; dims: number[]; data: Float32Array | BigInt64Array }
  | { type: 'info' }
  | { type: 'exit' };

export type WorkerReply =
  | { type: 'created'; key: string; seconds: number }
  | { type: 'ran'; key: string; seconds: number; output: Float32Array }
  | { type: 'info'; versions: Record<string, string>; vulkanLibraries: string[]; pid: number }
  | { type: 'error'; message: string };

const prefix = process.env.ORT_PREFIX;
if (!prefix) throw new Error('ORT_PREFIX is not set: this worker is started by bench/peers.ts');
const ort = createRequire(join(prefix, 'node_modules', '/'))('onnxruntime-node') as Ort;
const sessions = new Map<string, OrtSession>();

/** The Vulkan drivers mapped into this process: which ICD ONNX Runtime's own Dawn loaded (lavapipe, SwiftShader…). */
function vulkanLibraries(): string[] {
  const paths = readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .map((line) => line.slice(line.indexOf('/')))
    .filter((path) => /vulkan|swiftshader|lvp/i.test(path));
  return [...new Set(paths)];
}

async function handle(request: WorkerRequest): Promise<WorkerReply | undefined> {
  switch (request.type) {
    case 'create': {
      const started = performance.now();
      // Verbose session logging prints the node placements at initialisation (and one line per WebGPU program
      // at run time, which costs little next to a forward).
      const session = await ort.InferenceSession.create(request.path, {
        executionProviders: [request.ep],
        intraOpNumThreads: request.threads,
        interOpNumThreads: 1,
        logSeverityLevel: 0,
        logVerbosityLevel: 0,
      });
      sessions.set(request.key, session);
      return { type: 'created', key: request.key, seconds: (performance.now() - started) / 1000 };
    }
    case 'run': {
      const session = sessions.get(request.key);
      if (!session) throw new Error(`no session ${request.key}`);
      const tensor = new ort.Tensor(
        request.data instanceof Float32Array ? 'float32' : 'int64',
        request.data,
        request.dims,
      );
      const started = performance.now();
      const outputs = await session.run({ [request.input]: tensor });
      const output = outputs.embedding;
      if (!output || !(output.data instanceof Float32Array)) throw new Error('the export has no float32 "embedding"');
      const copy = new Float32Array(output.data);
      return { type: 'ran', key: request.key, seconds: (performance.now() - started) / 1000, output: copy };
    }
    case 'info':
      return { type: 'info', versions: ort.env.versions, vulkanLibraries: vulkanLibraries(), pid: process.pid };
    case 'exit':
      for (const session of sessions.values()) await session.release();
      process.disconnect();
      return undefined;
  }
}

process.on('message', (request: WorkerRequest) => {
  handle(request).then(
    (reply) => reply && process.send?.(reply),
    (error: unknown) => process.send?.({ type: 'error', message: String(error) }),
  );
});
