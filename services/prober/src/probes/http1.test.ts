import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, Server, Socket } from 'node:net';
import { AnchoredClock, silentLogger } from '@probemesh/common';
import { FailureCodes } from './failure';
import { httpProbe, httpProbeSchema } from './http';
import { encodeRequest, Http1Head, Http1ResponseParser, MAX_HEADER_BYTES } from './http1';
import { ProbeOutcome } from './types';

/** Runs `raw` through a parser, fed in pieces of `step` bytes (0 = all at once), then EOF when `eof`. */
function parse(raw: string | Buffer, opts: { step?: number; head?: boolean; eof?: boolean } = {}) {
  const r = { heads: [] as Http1Head[], body: '', ended: 0, errors: [] as { message: string; closed: boolean }[] };
  const p = new Http1ResponseParser(
    {
      head: (h) => r.heads.push(h),
      body: (c) => (r.body += c.toString('latin1')),
      end: () => r.ended++,
      error: (message, closed) => r.errors.push({ message, closed }),
    },
    opts.head ?? false,
  );
  const b = Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'latin1');
  const step = opts.step || b.length;
  for (let i = 0; i < b.length; i += step) p.push(b.subarray(i, i + step));
  if (opts.eof) p.eof();
  return { ...r, done: p.done };
}

/** Every split of the input gives the same result. */
function parseAllSplits(raw: string, opts: { head?: boolean; eof?: boolean } = {}) {
  const whole = parse(raw, opts);
  for (const step of [1, 2, 3, 7]) assert.deepEqual(parse(raw, { ...opts, step }), whole, `fed in ${step}-byte pieces`);
  return whole;
}

describe('Http1ResponseParser', () => {
  it('Content-Length body, status, version and every header value, whatever the read sizes', () => {
    const r = parseAllSplits('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\nX-Empty:\r\n\r\nhelloEXTRA');
    assert.equal(r.heads.length, 1);
    assert.deepEqual(r.heads[0], { status: 200, protocol: 'HTTP/1.1', headers: { 'content-length': ['5'], 'set-cookie': ['a=1', 'b=2'], 'x-empty': [''] } });
    assert.equal(r.body, 'hello', 'bytes after Content-Length are not body');
    assert.equal(r.ended, 1);
    assert.deepEqual(r.errors, []);
  });

  it('chunked: extensions, a zero-size last chunk, trailers', () => {
    const r = parseAllSplits('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 999\r\n\r\n5;ext=1\r\nhello\r\nB\r\n 01234567\r\n\r\n0\r\nX-Trailer: t\r\n\r\n');
    assert.equal(r.body, 'hello 01234567\r\n', 'Transfer-Encoding wins over Content-Length; chunk data is taken verbatim');
    assert.equal(r.ended, 1);
    assert.deepEqual(r.errors, []);
  });

  it('no framing: the body runs until the server closes (HTTP/1.0 style)', () => {
    const r = parseAllSplits('HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil close', { eof: true });
    assert.equal(r.heads[0]!.protocol, 'HTTP/1.0');
    assert.equal(r.body, 'until close');
    assert.equal(r.ended, 1);
    assert.deepEqual(r.errors, []);
  });

  it('Transfer-Encoding without chunked last: until close', () => {
    const r = parseAllSplits('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz', { eof: true });
    assert.equal(r.body, 'xyz');
    assert.equal(r.ended, 1);
  });

  it('no body for HEAD, 204 and 304 whatever Content-Length says', () => {
    for (const [raw, head] of [
      ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', true],
      ['HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n', false],
      ['HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n', false],
    ] as const) {
      const r = parse(raw, { head });
      assert.equal(r.ended, 1, raw);
      assert.equal(r.body, '');
      assert.equal(r.done, true);
    }
  });

  it('interim 100 and 103 responses are skipped; the final response is reported', () => {
    const r = parseAllSplits('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok');
    assert.equal(r.heads.length, 1);
    assert.equal(r.heads[0]!.status, 201);
    assert.equal(r.heads[0]!.headers.link, undefined);
    assert.equal(r.body, 'ok');
  });

  it('more than 5 interim responses is an error (Go limit)', () => {
    const r = parse('HTTP/1.1 100 Continue\r\n\r\n'.repeat(6) + 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n');
    assert.equal(r.heads.length, 0);
    assert.match(r.errors[0]!.message, /more than 5 interim/);
  });

  it('lenient like Go: bare LF line ends, a reason-less status line, obsolete folding', () => {
    const r = parseAllSplits('HTTP/1.1 200\nX-Folded: a\n  b\nContent-Length: 2\n\nok');
    assert.equal(r.heads[0]!.status, 200);
    assert.deepEqual(r.heads[0]!.headers['x-folded'], ['a b']);
    assert.equal(r.body, 'ok');
  });

  it('the same Content-Length twice is fine; two different ones are an error', () => {
    assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok').body, 'ok');
    const r = parse('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok');
    assert.equal(r.heads.length, 0);
    assert.match(r.errors[0]!.message, /invalid Content-Length "2, 3"/);
    assert.match(parse('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n').errors[0]!.message, /invalid Content-Length/);
  });

  it('malformed input: status line, header line, chunk size, chunk end, oversized head', () => {
    const cases: [string | Buffer, RegExp][] = [
      ['SSH-2.0-OpenSSH_9.2\r\n\r\n', /malformed status line "SSH-2.0-OpenSSH_9.2"/],
      ['HTTP/2.0 200 OK\r\n\r\n', /malformed status line/],
      ['HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n', /malformed header line "Bad Header: x"/],
      ['HTTP/1.1 200 OK\r\n continued\r\n\r\n', /malformed header line/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /malformed chunk size "zz"/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n', /chunk data not followed by CRLF/],
      [Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nX: '), Buffer.alloc(MAX_HEADER_BYTES + 1, 97)]), /header section larger than 1048576 bytes/],
    ];
    for (const [raw, re] of cases) {
      const r = parse(raw);
      assert.equal(r.errors.length, 1, String(raw).slice(0, 40));
      assert.match(r.errors[0]!.message, re);
      assert.equal(r.errors[0]!.closed, false);
      assert.equal(r.ended, 0);
    }
  });

  it('EOF before the head or inside a framed body is a premature close; nothing is reported after', () => {
    for (const raw of ['', 'HTTP/1.1 200 OK\r\nContent-Le', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n']) {
      const r = parse(raw, { eof: true });
      assert.equal(r.errors.length, 1, JSON.stringify(raw));
      assert.equal(r.errors[0]!.closed, true);
      assert.match(r.errors[0]!.message, /closed the connection before/);
      assert.equal(r.ended, 0);
    }
  });

  it('stop() from a body handler ends reporting at once', () => {
    let bodies = 0;
    let ended = 0;
    const p: Http1ResponseParser = new Http1ResponseParser(
      { head: () => {}, body: () => (bodies++, p.stop()), end: () => ended++, error: () => assert.fail('no error expected') },
      false,
    );
    p.push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n1\r\nb\r\n0\r\n\r\n'));
    assert.equal(bodies, 1);
    assert.equal(ended, 0);
    assert.equal(p.done, true);
  });
});

describe('encodeRequest', () => {
  it('request line, Host first, canonical header names, Connection: close, the body framed by Content-Length', () => {
    const b = encodeRequest({ method: 'POST', path: '/a?b=1', host: 'example.com:8080', headers: { 'user-agent': 'ua', 'x-api-key': 'k', connection: 'keep-alive', host: 'ignored' }, body: Buffer.from('{"a":1}') });
    assert.equal(b.toString(), 'POST /a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: ua\r\nX-Api-Key: k\r\nConnection: close\r\nContent-Length: 7\r\n\r\n{"a":1}');
  });

  it('Content-Length: 0 for a POST/PUT/PATCH without body, none for GET (as Go sends)', () => {
    assert.match(encodeRequest({ method: 'PUT', path: '/', host: 'h', headers: {}, body: undefined }).toString(), /\r\nContent-Length: 0\r\n\r\n$/);
    assert.doesNotMatch(encodeRequest({ method: 'GET', path: '/', host: 'h', headers: {}, body: undefined }).toString(), /Content-Length/);
  });
});

describe('http probe over raw servers (the HTTP/1.1 exchange end to end)', () => {
  const clock = new AnchoredClock();
  const ctx = { clock, log: silentLogger() };
  let server: Server;
  let base = '';
  const requests: string[] = [];
  /** Path → what the server writes back, then whether it closes (FIN) after writing. */
  const replies: Record<string, { write: string[]; close: boolean }> = {
    '/chunked': { write: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', '4\r\nneed\r\n', '6\r\nle ok!\r\n0\r\n\r\n'], close: false },
    '/early-hints': { write: ['HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'], close: false },
    '/cut': { write: ['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part'], close: true },
    '/nothing': { write: [], close: true },
    '/garbage': { write: ['220 smtp.example.com ESMTP\r\n\r\n'], close: true },
    '/http10': { write: ['HTTP/1.0 200 OK\r\n\r\nold body'], close: true },
  };
  before(async () => {
    server = createServer((s: Socket) => {
      let buf = '';
      s.on('error', () => {});
      s.on('data', (d) => {
        buf += d.toString('latin1');
        if (!buf.includes('\r\n\r\n')) return;
        requests.push(buf);
        const path = buf.split(' ')[1]!;
        const r = replies[path] ?? { write: ['HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'], close: false };
        r.write.forEach((w, i) => setTimeout(() => s.write(w), i * 5));
        setTimeout(() => (r.close ? s.end() : undefined), r.write.length * 5 + 5);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  async function run(path: string, raw: object = {}): Promise<ProbeOutcome> {
    const pc = { issues: [], envSources: new Map() };
    const o = httpProbeSchema.parse(raw, 'http', pc);
    assert.ok(o, JSON.stringify(pc.issues));
    return httpProbe(o).run({ id: 't', url: `${base}${path}`, module: 'm', timeoutMs: 3000, labels: {} }, AbortSignal.timeout(3000), ctx);
  }
  const gauge = (o: ProbeOutcome, name: string) => o.gauges.find((g) => g.name === name)?.value;

  it('a chunked body split over writes is read whole (body regex sees it)', async () => {
    const o = await run('/chunked', { fail_if_body_not_matches_regexp: ['needle ok!'] });
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(gauge(o, 'probe_http_uncompressed_body_length'), 10);
    assert.equal(gauge(o, 'probe_http_content_length'), -1);
    assert.match(requests.at(-1)!, /^GET \/chunked HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nUser-Agent: probemesh\/[^\r]+\r\nConnection: close\r\n\r\n$/);
  });

  it('103 Early Hints then 200: success with the final status', async () => {
    const o = await run('/early-hints');
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(o.httpStatusCode, 200);
  });

  it('HTTP/1.0 without Content-Length: body until close, version HTTP/1.0', async () => {
    const o = await run('/http10', { valid_http_versions: ['HTTP/1.0'] });
    assert.equal(o.success, true, o.failureMessage);
    assert.equal(o.httpVersion, 1);
    assert.equal(gauge(o, 'probe_http_uncompressed_body_length'), 8);
  });

  it('the server closing mid-body or before any answer is `reset`, naming the phase', async () => {
    const cut = await run('/cut');
    assert.equal(cut.failureCode, FailureCodes.RESET);
    assert.match(cut.failureMessage, /closed the connection before the response body ended \(transfer\)/);
    const none = await run('/nothing');
    assert.equal(none.failureCode, FailureCodes.RESET);
    assert.match(none.failureMessage, /closed the connection before a complete response head \(processing\)/);
  });

  it('a non-HTTP answer is `error` with the line it got', async () => {
    const o = await run('/garbage');
    assert.equal(o.failureCode, FailureCodes.ERROR);
    assert.match(o.failureMessage, /malformed HTTP\/1\.1 response: malformed status line "220 smtp\.example\.com ESMTP"/);
  });
});
