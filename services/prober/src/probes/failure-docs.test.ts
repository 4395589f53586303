import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FailureCodes } from './failure';

test('every probe failure code is documented in the failure table of docs/ERRORS.md', () => {
  const doc = readFileSync(join(__dirname, '..', '..', '..', '..', 'docs', 'ERRORS.md'), 'utf8');
  const table = doc.slice(doc.indexOf('## Probe failure codes'));
  for (const c of Object.values(FailureCodes)) assert.match(table, new RegExp(`^\\| \`${c}\` \\|`, 'm'), `${c} is documented`);
});
