/**
 * Zoo TCP servers: an SMTP-like banner service with STARTTLS, the same banner over
 * implicit TLS, a line echo, a server that resets right after accept, one that accepts
 * and stays silent, and a refused port.
 */
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { createServer as createTlsServer, TLSSocket } from 'node:tls';
import { ZooCerts } from './certs';

/** The zoo's TCP servers (`127.0.0.1:<port>` targets). */
export interface TcpZoo {
  /** "220 zoo.test ESMTP ready"; EHLO → 250 lines incl. STARTTLS; STARTTLS → "220 go ahead" then TLS; QUIT → 221. */
  readonly banner: string;
  /** The same banner dialogue over TLS from the first byte. */
  readonly tlsBanner: string;
  /** Echoes every byte back. */
  readonly echo: string;
  /** Accepts, then resets the connection (RST). */
  readonly reset: string;
  /** Accepts and never sends anything. */
  readonly silent: string;
  /** Nothing listens here (connection refused). */
  readonly refused: string;
  close(): Promise<void>;
}

function smtpDialogue(sock: Socket, certs: ZooCerts, secure: boolean): void {
  sock.on('error', () => undefined);
  sock.write(secure ? '220 zoo.test ESMTP ready (tls)\r\n' : '220 zoo.test ESMTP ready\r\n');
  let buf = '';
  const onData = (c: Buffer): void => {
    buf += c.toString('latin1');
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      const cmd = line.split(' ')[0]?.toUpperCase();
      if (cmd === 'EHLO' || cmd === 'HELO') sock.write(`250-zoo.test hello ${line.slice(5)}\r\n${secure ? '' : '250-STARTTLS\r\n'}250 ${secure ? 'SECURE' : 'OK'}\r\n`);
      else if (cmd === 'STARTTLS' && !secure) {
        sock.removeListener('data', onData);
        sock.write('220 go ahead\r\n', () => {
          const tls = new TLSSocket(sock, { isServer: true, key: certs.key, cert: certs.cert });
          tls.on('error', () => sock.destroy());
          // After the handshake the dialogue starts again (without a new banner, like SMTP).
          tls.once('secure', () => {
            let b2 = '';
            tls.on('data', (d: Buffer) => {
              b2 += d.toString('latin1');
              let j: number;
              while ((j = b2.indexOf('\n')) >= 0) {
                const l = b2.slice(0, j).replace(/\r$/, '');
                b2 = b2.slice(j + 1);
                if (/^EHLO/i.test(l)) tls.write('250 zoo.test SECURE\r\n');
                else if (/^QUIT/i.test(l)) tls.end('221 bye\r\n');
                else tls.write('500 unknown command\r\n');
              }
            });
          });
        });
        return;
      } else if (cmd === 'QUIT') {
        sock.end('221 bye\r\n');
        return;
      } else sock.write('500 unknown command\r\n');
    }
  };
  sock.on('data', onData);
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Starts the zoo's TCP servers; `certs` serve STARTTLS and the TLS banner. */
export async function startTcpZoo(certs: ZooCerts): Promise<TcpZoo> {
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  const banner = createServer((s) => smtpDialogue(s, certs, false));
  const tlsBanner = createTlsServer({ key: certs.key, cert: certs.cert }, (s) => smtpDialogue(s, certs, true));
  tlsBanner.on('tlsClientError', () => undefined);
  const echo = createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  const reset = createServer((s) => s.resetAndDestroy());
  const silent = createServer((s) => s.on('error', () => undefined));
  const servers: Server[] = [banner, tlsBanner, echo, reset, silent];
  for (const s of servers) s.on('connection', track);
  const [bannerT, tlsT, echoT, resetT, silentT] = await Promise.all(servers.map(listen));
  const tmp = createServer();
  const refused = await listen(tmp);
  await new Promise((r) => tmp.close(r));
  return {
    banner: bannerT!,
    tlsBanner: tlsT!,
    echo: echoT!,
    reset: resetT!,
    silent: silentT!,
    refused,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}
