// The pass/fail tally of the Deno checks, ending in the plain "N passed, N failed" line.
import process from 'node:process';
let passed = 0;
let failed = 0;

export function check(name, ok, detail) {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
}

/** Runs the checks in `main`, counting an exception as one failure, then prints the tally and sets the exit code. */
export async function report(main) {
  try {
    await main();
  } catch (error) {
    failed++;
    console.log(`FAIL ${error?.stack ?? error}`);
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}
