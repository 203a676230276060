import { execFileSync } from 'node:child_process';

/** The CLI tests run the compiled `whylesion` binary as a user would, and the browser test the bundle, so build both once first. */
export default function setup(): void {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  execFileSync(process.execPath, ['scripts/build-web.mjs'], { stdio: 'inherit' });
}
