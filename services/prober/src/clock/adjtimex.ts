/**
 * adjtimex(2) with modes 0 (read only, no privilege) through a 20-line C helper: Node
 * cannot make the call itself. The helper is compiled with the system `cc`/`gcc` once
 * into a cache directory and reused; no compiler → this source is simply unavailable.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Adjtimex, parseAdjtimexLine } from './sync';

const run = promisify(execFile);

/** The helper's C source: prints `ret status offset maxerror esterror`. */
export const ADJTIMEX_C = `#include <stdio.h>
#include <sys/timex.h>
int main(void) {
  struct timex tx = {0};
  int ret = adjtimex(&tx);
  if (ret < 0) { perror("adjtimex"); return 1; }
  printf("%d %d %ld %ld %ld\\n", ret, tx.status, (long)tx.offset, (long)tx.maxerror, (long)tx.esterror);
  return 0;
}
`;

/** Default cache directory of the compiled helper. */
export function defaultHelperDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? tmpdir(), `probemesh-${process.getuid?.() ?? 'u'}`);
}

/** Path of the compiled helper, compiling it if needed; throws when it cannot be built. */
export async function ensureAdjtimexHelper(dir = defaultHelperDir(), compiler = 'cc'): Promise<string> {
  const hash = createHash('sha256').update(ADJTIMEX_C).digest('hex').slice(0, 12);
  const bin = join(dir, `adjtimex-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const src = join(dir, `adjtimex-${hash}-${process.pid}.c`);
  writeFileSync(src, ADJTIMEX_C);
  const tmp = `${bin}.${process.pid}`;
  await run(compiler, ['-O2', '-o', tmp, src], { timeout: 30_000 });
  renameSync(tmp, bin);
  return bin;
}

/** Reads adjtimex through the helper. */
export async function readAdjtimex(helper: string): Promise<Adjtimex> {
  const { stdout } = await run(helper, [], { timeout: 5_000 });
  const a = parseAdjtimexLine(stdout);
  if (!a) throw new Error(`unexpected adjtimex helper output ${JSON.stringify(stdout.slice(0, 100))}`);
  return a;
}
