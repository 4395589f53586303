#!/usr/bin/env node
// Runs every compiled test file (`**/dist/**/*.test.js` under packages/, services/, test/)
// with node's test runner and exits with its exit code.
//
// Usage: node scripts/run-tests.mjs [node --test flags...] [path filters...]
//   node scripts/run-tests.mjs --test-name-pattern=cluster
//   node scripts/run-tests.mjs services/prober test/dist/harness
// Flags are passed to `node --test`; other arguments keep only the test files whose path
// contains one of them. Reporter: node's default (spec on a TTY, tap otherwise), so the
// `# tests N` / `# pass N` / `# fail N` summary reaches stdout in CI.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { constants } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const searchRoots = ['packages', 'services', 'test'];
// node --test flags that take their value as the next argument when written without `=`.
const flagsWithValue = new Set([
  '--test-name-pattern',
  '--test-skip-pattern',
  '--test-reporter',
  '--test-reporter-destination',
  '--test-concurrency',
  '--test-timeout',
  '--test-shard',
  '--require',
  '-r',
  '--import',
]);

/** Every `*.test.js` below a `dist` directory under `dir`, skipping node_modules. */
function findTests(dir, underDist, out) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (err.code === 'ENOENT') return out;
    throw err;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) findTests(p, underDist || e.name === 'dist', out);
    else if (underDist && e.isFile() && e.name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const flags = [];
const filters = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a.startsWith('-')) {
    flags.push(a);
    if (flagsWithValue.has(a) && i + 1 < argv.length) flags.push(argv[++i]);
  } else {
    filters.push(relative(root, resolve(a)) || '.');
  }
}

let files = searchRoots.flatMap((d) => findTests(join(root, d), false, [])).map((f) => relative(root, f));
files.sort();
if (filters.length > 0) {
  files = files.filter((f) => filters.some((flt) => flt === '.' || f === flt || f.startsWith(flt.endsWith(sep) ? flt : flt + sep) || f.includes(flt)));
}
if (files.length === 0) {
  const why = filters.length > 0 ? `matching ${filters.join(', ')}` : 'under packages/, services/, test/';
  console.error(`run-tests: no compiled test files (**/dist/**/*.test.js) ${why}; run 'npm run build' first`);
  process.exit(1);
}

const args = ['--test', '--test-concurrency=2', '--test-timeout=300000', ...flags, ...files];
console.error(`run-tests: ${files.length} test files`);
const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => child.kill(sig));
}
child.on('error', (err) => {
  console.error(`run-tests: cannot start node: ${err.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    console.error(`run-tests: node --test was killed by ${signal}`);
    process.exit(128 + (constants.signals[signal] ?? 1));
  }
  process.exit(code ?? 1);
});
