import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes } from './errors';

test('every error code is unique and documented in docs/ERRORS.md', () => {
  const codes = Object.values(ErrorCodes);
  assert.equal(new Set(codes).size, codes.length);
  const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'ERRORS.md'), 'utf8');
  for (const c of codes) assert.ok(doc.includes(`\`${c}\``), `${c} is documented`);
});
