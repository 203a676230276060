import { execFile } from 'node:child_process';
import { UserError } from '../errors.js';

const INSTALL = 'apt-get install python3-torch python3-numpy, or pip install torch numpy';
/** Debian's interpreter: where apt puts torch, often not the first python3 on PATH (pyenv, conda, venvs). */
const SYSTEM_PYTHON = '/usr/bin/python3';
const PROBE = `import json
found = {}
for name in ("numpy", "torch"):
    try:
        found[name] = __import__(name).__version__
    except Exception:
        found[name] = None
found["cuda"] = bool(found["torch"]) and __import__("torch").cuda.is_available()
print(json.dumps(found))`;

export interface PythonWithTorch {
  path: string;
  torch: string;
  numpy: string;
  cuda: boolean;
}

type Probe = { ran: false; problem: string } | { ran: true; torch: string | null; numpy: string | null; cuda: boolean };

function probe(path: string): Promise<Probe> {
  return new Promise((resolve) => {
    execFile(path, ['-c', PROBE], { timeout: 120_000, encoding: 'utf8' }, (error, stdout) => {
      if (error && (error as NodeJS.ErrnoException).code && typeof (error as NodeJS.ErrnoException).code === 'string') {
        resolve({
          ran: false,
          problem:
            (error as NodeJS.ErrnoException).code === 'ENOENT'
              ? 'was not found'
              : `cannot be run (${(error as NodeJS.ErrnoException).code})`,
        });
        return;
      }
      try {
        const found = JSON.parse(stdout.trim().split('\n').pop() ?? '') as {
          torch: string | null;
          numpy: string | null;
          cuda: boolean;
        };
        resolve({ ran: true, ...found });
      } catch {
        resolve({ ran: false, problem: 'did not run as Python 3' });
      }
    });
  });
}

/**
 * The Python that runs the PyTorch reference: `explicit` (--python) as given, else $WHYLESION_PYTHON, else
 * python3 on PATH, then /usr/bin/python3 when that one lacks torch or numpy. Never installs anything.
 */
export async function findPython(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<PythonWithTorch> {
  const first = explicit ?? env.WHYLESION_PYTHON ?? 'python3';
  const candidates = explicit === undefined && first !== SYSTEM_PYTHON ? [first, SYSTEM_PYTHON] : [first];
  const problems: string[] = [];
  for (const path of candidates) {
    const found = await probe(path);
    if (found.ran && found.torch && found.numpy)
      return { path, torch: found.torch, numpy: found.numpy, cuda: found.cuda };
    if (found.ran) {
      const missing = [found.torch ? '' : 'torch', found.numpy ? '' : 'numpy'].filter(Boolean).join(' and ');
      problems.push(`${path} has no ${missing}`);
    } else if (path !== SYSTEM_PYTHON || candidates.length === 1) {
      problems.push(`Python ${path} ${found.problem}`);
    }
  }
  const how =
    explicit === undefined
      ? 'or set WHYLESION_PYTHON / pass --python PATH to a Python that has them'
      : 'or pass --python PATH to a Python that has them';
  throw new UserError(
    `The PyTorch reference needs Python 3 with torch and numpy, but ${problems.join(', and ')}; install them (${INSTALL}) ${how}.`,
  );
}
