#!/usr/bin/env node
// `npm run bench [-- NAME...]`: runs every bench/<name>.bench.mjs (or the named ones),
// one at a time (the machine is small and shared), each printing its table and writing
// bench/results/<name>.json. Scale is heavy, so it only runs when named.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const all = readdirSync(here).filter((f) => f.endsWith('.bench.mjs')).map((f) => f.replace(/\.bench\.mjs$/, '')).sort();
const named = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = named.filter((n) => !all.includes(n));
if (unknown.length) {
  console.error(`bench: unknown benchmark(s) ${unknown.join(', ')}; available: ${all.join(', ')}`);
  process.exit(2);
}
const run = named.length ? named : all.filter((n) => n !== 'scale');
let failed = 0;
for (const name of run) {
  console.log(`\n=== bench ${name} ===`);
  const r = spawnSync(process.execPath, [join(here, `${name}.bench.mjs`), ...process.argv.slice(2).filter((a) => a.startsWith('-'))], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`bench ${name} failed (exit ${r.status ?? r.signal})`);
  }
}
process.exit(failed ? 1 : 0);
