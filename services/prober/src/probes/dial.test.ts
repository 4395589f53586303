import { strict as assert } from 'node:assert';
import { AddressInfo, connect, createServer, Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { FailureCodes } from './failure';
import { dialTcp, stampConnect } from './dial';

const now = (): bigint => process.hrtime.bigint();

describe('connect timing (stampConnect, dialTcp)', () => {
  let server: Server;
  let port: number;
  let closedPort: number;
  before(async () => {
    server = createServer((s) => s.end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    const tmp = createServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    closedPort = (tmp.address() as AddressInfo).port;
    await new Promise((r) => tmp.close(r));
  });
  after(() => server.close());

  it('stamps the start after net.connect() returned and the end before the first connect listener runs', async () => {
    const before = now();
    const sock = connect({ host: '127.0.0.1', port });
    const returned = now();
    let started: bigint | undefined;
    const st = stampConnect(sock, now, (ns) => (started = ns));
    const atListener = await new Promise<bigint>((r) => sock.once('connect', () => r(now())));
    sock.destroy();
    assert.ok(st.startNs !== undefined && st.endNs !== undefined, 'both marks taken');
    assert.equal(started, st.startNs, 'onStart gets the start mark');
    assert.ok(before < returned && returned <= st.startNs!, 'start read when the syscall is about to run, after connect() returned');
    assert.ok(st.startNs! <= st.endNs! && st.endNs! <= atListener, 'end read before the connect listener');
  });

  it('a refused connect leaves no end mark', async () => {
    const sock = connect({ host: '127.0.0.1', port: closedPort });
    const st = stampConnect(sock, now);
    await new Promise((r) => sock.once('error', r));
    assert.ok(st.startNs !== undefined);
    assert.equal(st.endNs, undefined);
  });

  it('dialTcp with a clock returns the marks of the connect; without one it returns none', async () => {
    const d = await dialTcp({ address: '127.0.0.1', family: 4, port }, AbortSignal.timeout(5000), now);
    assert.ok(d.ok);
    assert.ok(d.startNs !== undefined && d.connectedNs !== undefined && d.startNs <= d.connectedNs);
    d.socket.destroy();
    const plain = await dialTcp({ address: '127.0.0.1', family: 4, port }, AbortSignal.timeout(5000));
    assert.ok(plain.ok);
    assert.equal(plain.startNs, undefined);
    plain.socket.destroy();
    const refused = await dialTcp({ address: '127.0.0.1', family: 4, port: closedPort }, AbortSignal.timeout(5000), now);
    assert.deepEqual(refused.ok ? 'connected' : refused.code, FailureCodes.CONNECT_REFUSED);
  });
});
