import { execFileSync } from 'node:child_process';

/** The CLI tests run the compiled `whylesion` binary as a user would, so build it once first. */
export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
}
