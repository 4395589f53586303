/**
 * Zoo Thrift server: binary or compact protocol, framed or buffered transport, chosen
 * per connection from the first bytes; multiplexed names (`svc:method`) accepted.
 * Methods: `ping` → void reply; `getName` → "zoo"; `echo` → its string argument 1;
 * `fail` → declared exception (result field 1, a struct with a message);
 * `crash` → T_EXCEPTION (TApplicationException INTERNAL_ERROR); `hang` → no reply;
 * anything else → T_EXCEPTION UNKNOWN_METHOD.
 */
import { AddressInfo, createServer, Socket } from 'node:net';
import { decodeThriftMessage, encodeThriftMessage, frame, MessageType, ThriftField, ThriftIncomplete, ThriftMessage, ThriftProtocol, TType } from '../../probes/thrift-wire';

/** A running zoo Thrift server. */
export interface ThriftZoo {
  /** `127.0.0.1:<port>`. */
  readonly target: string;
  /** Calls received: "protocol/transport method". */
  readonly calls: string[];
  close(): Promise<void>;
}

function reply(call: ThriftMessage): ThriftMessage | undefined {
  const method = call.name.includes(':') ? call.name.slice(call.name.indexOf(':') + 1) : call.name;
  const ok = (fields: ThriftField[]): ThriftMessage => ({ name: call.name, type: MessageType.REPLY, seqid: call.seqid, fields });
  const appException = (type: number, message: string): ThriftMessage => ({ name: call.name, type: MessageType.EXCEPTION, seqid: call.seqid, fields: [{ id: 1, type: TType.STRING, value: message }, { id: 2, type: TType.I32, value: type }] });
  switch (method) {
    case 'ping':
      return ok([]);
    case 'getName':
      return ok([{ id: 0, type: TType.STRING, value: 'zoo' }]);
    case 'echo':
      return ok([{ id: 0, type: TType.STRING, value: String(call.fields.find((f) => f.id === 1)?.value ?? '') }]);
    case 'fail':
      return ok([{ id: 1, type: TType.STRUCT, value: [{ id: 1, type: TType.STRING, value: 'zoo failure on purpose' }] }]);
    case 'crash':
      return appException(6, 'internal error on purpose');
    case 'hang':
      return undefined;
    default:
      return appException(1, `Invalid method name: '${method}'`);
  }
}

function serve(sock: Socket, calls: string[]): void {
  let buf = Buffer.alloc(0);
  sock.on('error', () => undefined);
  sock.on('data', (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    for (;;) {
      if (buf.length < 5) return;
      const framed = buf[0] !== 0x80 && buf[0] !== 0x82;
      const body = framed ? buf.subarray(4, 4 + buf.readUInt32BE(0)) : buf;
      if (framed && body.length < buf.readUInt32BE(0)) return;
      const proto: ThriftProtocol = body[0] === 0x82 ? 'compact' : 'binary';
      let decoded: { message: ThriftMessage; used: number };
      try {
        decoded = decodeThriftMessage(proto, body);
      } catch (err) {
        if (err instanceof ThriftIncomplete) return;
        sock.destroy();
        return;
      }
      buf = buf.subarray((framed ? 4 : 0) + decoded.used);
      calls.push(`${proto}/${framed ? 'framed' : 'buffered'} ${decoded.message.name}`);
      const r = reply(decoded.message);
      if (r) {
        const out = encodeThriftMessage(proto, r);
        sock.write(framed ? frame(out) : out);
      }
    }
  });
}

/** Starts the zoo Thrift server on 127.0.0.1. */
export async function startThriftZoo(): Promise<ThriftZoo> {
  const calls: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    serve(s, calls);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    target: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
