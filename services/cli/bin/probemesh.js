#!/usr/bin/env node
// Launcher: the CLI is compiled to dist/ by `npm run build` (npm start / npm test do it).
'use strict';
let cli;
try {
  cli = require('../dist/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && /dist[\\/]main\.js/.test(err.message)) {
    process.stderr.write('probemesh: not built yet; run `npm run build` in the repository root\n');
    process.exit(1);
  }
  throw err;
}
cli.main(process.argv.slice(2));
