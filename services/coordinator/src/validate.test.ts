import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError, targetId } from '@probemesh/common';
import { probemesh } from '@probemesh/proto';
import { TargetDefaults } from './config';
import { removeTargetId, validateAddTarget } from './validate';

const defaults: TargetDefaults = { module: 'http_2xx', interval: 15_000, timeout: 5_000, replication: 1 };

function fieldOf(req: probemesh.v1.IAddTargetRequest): string {
  try {
    validateAddTarget(req, defaults);
  } catch (err) {
    assert.ok(err instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${err}`);
    assert.ok(err.message.startsWith(`${err.field}: `), `message names the field: ${err.message}`);
    return err.field;
  }
  assert.fail(`accepted ${JSON.stringify(req)}`);
}

const manyLabels: Record<string, string> = {};
for (let i = 0; i < 33; i++) manyLabels[`l${i}`] = 'x';

const bad: [string, probemesh.v1.IAddTargetRequest, string][] = [
  ['missing url', {}, 'url'],
  ['relative url', { url: '/health' }, 'url'],
  ['ftp scheme', { url: 'ftp://example.com/' }, 'url'],
  ['no host', { url: 'http://' }, 'url'],
  ['whitespace in url', { url: 'http://exa mple.com/' }, 'url'],
  ['non-http url for explicit http module', { url: 'example.com:443', module: 'http_post_2xx' }, 'url'],
  ['bad module name', { url: 'http://a/', module: 'http 2xx' }, 'module'],
  ['module with slash', { url: 'a:1', module: 'tcp/connect' }, 'module'],
  ['interval too short', { url: 'http://a/', intervalMs: 99 }, 'interval_ms'],
  ['interval over 1h', { url: 'http://a/', intervalMs: 3_600_001 }, 'interval_ms'],
  ['timeout equal to interval', { url: 'http://a/', intervalMs: 1000, timeoutMs: 1000 }, 'timeout_ms'],
  ['timeout above interval', { url: 'http://a/', intervalMs: 1000, timeoutMs: 5000 }, 'timeout_ms'],
  ['default timeout above short interval is capped, explicit is not', { url: 'http://a/', intervalMs: 200, timeoutMs: 300 }, 'timeout_ms'],
  ['replication 11', { url: 'http://a/', replication: 11 }, 'replication'],
  ['label name with dash', { url: 'http://a/', labels: { 'team-name': 'x' } }, 'labels.team-name'],
  ['label name starting with digit', { url: 'http://a/', labels: { '1team': 'x' } }, 'labels.1team'],
  ['label name __', { url: 'http://a/', labels: { __name__: 'x' } }, 'labels.__name__'],
  ['reserved instance', { url: 'http://a/', labels: { instance: 'x' } }, 'labels.instance'],
  ['reserved zone', { url: 'http://a/', labels: { zone: 'x' } }, 'labels.zone'],
  ['reserved job', { url: 'http://a/', labels: { job: 'x' } }, 'labels.job'],
  ['label value too long', { url: 'http://a/', labels: { team: 'x'.repeat(1025) } }, 'labels.team'],
  ['too many labels', { url: 'http://a/', labels: manyLabels }, 'labels'],
];

for (const [name, req, field] of bad) {
  test(`rejects ${name} naming ${field}`, () => {
    assert.equal(fieldOf(req), field);
  });
}

test('the first bad field is reported and the input is not changed', () => {
  const req = { url: 'http://a/', intervalMs: 50, replication: 99 };
  assert.equal(fieldOf(req), 'interval_ms');
  assert.deepEqual(req, { url: 'http://a/', intervalMs: 50, replication: 99 });
});

test('good input gets defaults applied', () => {
  const t = validateAddTarget(probemesh.v1.AddTargetRequest.create({ url: 'https://api.example.com/health' }), defaults);
  assert.deepEqual(t, {
    id: targetId('http_2xx', 'https://api.example.com/health'),
    url: 'https://api.example.com/health',
    module: 'http_2xx',
    intervalMs: 15_000,
    timeoutMs: 5_000,
    replication: 1,
    labels: {},
  });
});

test('default timeout is capped at 80% of a short interval', () => {
  const t = validateAddTarget({ url: 'http://a/', intervalMs: 1000 }, defaults);
  assert.equal(t.timeoutMs, 800);
  assert.equal(validateAddTarget({ url: 'http://a/', intervalMs: 100 }, defaults).timeoutMs, 80);
});

test('explicit values and labels are kept; non-http modules take host:port', () => {
  const t = validateAddTarget({ url: 'db.internal:5432', module: 'tcp_connect', intervalMs: 500, timeoutMs: 200, replication: 3, labels: { team: 'payments', _tier: '1', empty: '' } }, defaults);
  assert.equal(t.id, targetId('tcp_connect', 'db.internal:5432'));
  assert.equal(t.module, 'tcp_connect');
  assert.equal(t.intervalMs, 500);
  assert.equal(t.timeoutMs, 200);
  assert.equal(t.replication, 3);
  assert.deepEqual(t.labels, { team: 'payments', _tier: '1', empty: '' });
  const thirtyTwo = Object.fromEntries(Object.entries(manyLabels).slice(0, 32));
  assert.equal(Object.keys(validateAddTarget({ url: 'http://a/', labels: thirtyTwo }, defaults).labels).length, 32);
});

test('RemoveTarget resolves id, or url + module', () => {
  assert.equal(removeTargetId({ id: 'abc' }, defaults), 'abc');
  assert.equal(removeTargetId({ url: 'http://a/' }, defaults), targetId('http_2xx', 'http://a/'));
  assert.equal(removeTargetId({ url: 'a:1', module: 'tcp_connect' }, defaults), targetId('tcp_connect', 'a:1'));
  assert.throws(() => removeTargetId({}, defaults), (e: unknown) => e instanceof InvalidArgumentError && e.field === 'id');
});
