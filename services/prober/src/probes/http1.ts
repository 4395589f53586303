/**
 * HTTP/1.1 on a connected socket, written for the probe: one request out as one write, the
 * response parsed as it arrives. It replaces `http.request` on the probe's own socket:
 * node:http builds a ClientRequest, an IncomingMessage, an agent-less parser binding and
 * two stream objects per request, which was most of the JavaScript cost of an http probe
 * (BENCHMARKS.md, probes). What a probe needs is small: the status line, the header fields,
 * and the body framed as RFC 9112 §6.3 says (no body for HEAD/1xx/204/304; chunked when
 * Transfer-Encoding ends in chunked; else Content-Length; else until the server closes).
 *
 * Parsing is as lenient as Go's net/http (what blackbox_exporter uses): bare LF line ends
 * and obsolete header folding are accepted, interim 1xx responses (100, 103) are skipped
 * (up to 5, Go's limit), and a response with two different Content-Length values, a
 * malformed status line or chunk size, or a header section over 1 MiB is an error.
 */
import { Socket } from 'node:net';

/** Largest response header section read (Go's default is 10 MiB; node:http's is 16 KiB). */
export const MAX_HEADER_BYTES = 1 << 20;
/** Most interim (1xx) responses skipped before the final one (Go's limit). */
const MAX_INTERIM = 5;

/** Methods Go sends `Content-Length: 0` for when they have no body. */
const ZERO_LENGTH_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** What a request line and header section are made of. */
export interface Http1Request {
  readonly method: string;
  /** Path and query, as sent. */
  readonly path: string;
  /** Host header. */
  readonly host: string;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | undefined;
}

/** `user-agent` → `User-Agent` (Go's canonical form, what servers are used to seeing). */
export function canonicalHeaderName(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

/**
 * The request bytes: request line, Host first (like Go), the headers, `Connection: close`
 * (a fresh connection per probe, as blackbox's client with keep-alives disabled sends), the
 * body framed by Content-Length.
 */
export function encodeRequest(req: Http1Request): Buffer {
  let head = `${req.method} ${req.path} HTTP/1.1\r\nHost: ${req.host}\r\n`;
  for (const name in req.headers) {
    if (name === 'host' || name === 'connection' || name === 'content-length' || name === 'transfer-encoding') continue;
    head += `${canonicalHeaderName(name)}: ${req.headers[name]}\r\n`;
  }
  head += 'Connection: close\r\n';
  if (req.body !== undefined) head += `Content-Length: ${req.body.length}\r\n`;
  else if (ZERO_LENGTH_METHODS.has(req.method)) head += 'Content-Length: 0\r\n';
  head += '\r\n';
  const h = Buffer.from(head, 'latin1');
  return req.body !== undefined && req.body.length > 0 ? Buffer.concat([h, req.body]) : h;
}

/** A response head. */
export interface Http1Head {
  readonly status: number;
  /** `HTTP/1.0` or `HTTP/1.1`. */
  readonly protocol: string;
  /** Lower-case names, every value in order. */
  readonly headers: Record<string, string[]>;
}

/** What the parser reports. */
export interface Http1Events {
  /** The final response's head. */
  head(h: Http1Head): void;
  /** Body bytes (after de-chunking, before any content decoding). */
  body(chunk: Buffer): void;
  /** The response ended (body complete). */
  end(): void;
  /** The response is malformed (`closed`: the server closed the connection before it ended). */
  error(message: string, closed: boolean): void;
}

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
  Done,
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?:[ \t].*)?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,15})[ \t]*(?:;.*)?$/;
const EMPTY = Buffer.alloc(0);

/** Index just past the blank line ending a header section in `b` (from `from`), or -1. */
function headEnd(b: Buffer, from: number): number {
  for (let i = b.indexOf(10, from); i >= 0; i = b.indexOf(10, i + 1)) {
    if (b[i + 1] === 10) return i + 2;
    if (b[i + 1] === 13 && b[i + 2] === 10) return i + 3;
  }
  return -1;
}

/** Lines of a header section without their CR/LF ends, the blank last line dropped. */
function lines(text: string): string[] {
  const out = text.split('\n');
  for (let i = 0; i < out.length; i++) {
    const l = out[i]!;
    if (l.endsWith('\r')) out[i] = l.slice(0, -1);
  }
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
}

/** Header fields of `ls` (from index 1; obsolete folding joined with a space), or an error. */
function fields(ls: string[]): Record<string, string[]> | string {
  const headers: Record<string, string[]> = {};
  let last: string[] | undefined;
  for (let i = 1; i < ls.length; i++) {
    const l = ls[i]!;
    if (l[0] === ' ' || l[0] === '\t') {
      if (!last) return `malformed header line ${JSON.stringify(l.slice(0, 80))}`;
      last[last.length - 1] = `${last[last.length - 1]} ${l.trim()}`;
      continue;
    }
    const colon = l.indexOf(':');
    const name = colon > 0 ? l.slice(0, colon) : '';
    if (!TOKEN.test(name)) return `malformed header line ${JSON.stringify(l.slice(0, 80))}`;
    const key = name.toLowerCase();
    const value = l.slice(colon + 1).trim();
    last = headers[key];
    if (last) last.push(value);
    else headers[key] = last = [value];
  }
  return headers;
}

/**
 * An HTTP/1.x response parser fed with the bytes of one connection. `noBody` is set for a
 * HEAD request. After `end` or `error` nothing more is reported.
 */
export class Http1ResponseParser {
  private state = State.Head;
  private pending: Buffer = EMPTY;
  private remaining = 0;
  private interim = 0;

  constructor(
    private readonly ev: Http1Events,
    private readonly noBody: boolean,
  ) {}

  /** Whether the response ended (or failed). */
  get done(): boolean {
    return this.state === State.Done;
  }

  /** Feeds the next bytes read. */
  push(data: Buffer): void {
    const b = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    this.pending = EMPTY;
    let at = 0;
    while (at < b.length && this.state !== State.Done) {
      switch (this.state) {
        case State.Head: {
          const end = headEnd(b, at);
          if (end < 0) {
            if (b.length - at > MAX_HEADER_BYTES) return this.fail(`response header section larger than ${MAX_HEADER_BYTES} bytes`);
            this.pending = b.subarray(at);
            return;
          }
          if (end - at > MAX_HEADER_BYTES) return this.fail(`response header section larger than ${MAX_HEADER_BYTES} bytes`);
          const ok = this.onHead(b.toString('latin1', at, end));
          at = end;
          if (!ok) return;
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, b.length - at);
          this.ev.body(b.subarray(at, at + n));
          if (this.done) return;
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finish();
          break;
        }
        case State.UntilClose:
          this.ev.body(at === 0 ? b : b.subarray(at));
          at = b.length;
          break;
        case State.ChunkSize:
        case State.ChunkDataEnd:
        case State.Trailers: {
          const nl = b.indexOf(10, at);
          if (nl < 0) {
            if (b.length - at > 4096 && this.state !== State.Trailers) return this.fail('chunk size line too long');
            if (b.length - at > MAX_HEADER_BYTES) return this.fail(`response trailer section larger than ${MAX_HEADER_BYTES} bytes`);
            this.pending = b.subarray(at);
            return;
          }
          let line = b.toString('latin1', at, nl);
          if (line.endsWith('\r')) line = line.slice(0, -1);
          at = nl + 1;
          if (this.state === State.ChunkDataEnd) {
            if (line !== '') return this.fail('chunk data not followed by CRLF');
            this.state = State.ChunkSize;
          } else if (this.state === State.Trailers) {
            if (line === '') this.finish();
          } else {
            const m = CHUNK_SIZE.exec(line);
            if (!m) return this.fail(`malformed chunk size ${JSON.stringify(line.slice(0, 40))}`);
            this.remaining = parseInt(m[1]!, 16);
            this.state = this.remaining === 0 ? State.Trailers : State.ChunkData;
          }
          break;
        }
        case State.ChunkData: {
          const n = Math.min(this.remaining, b.length - at);
          this.ev.body(b.subarray(at, at + n));
          if (this.done) return;
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.ChunkDataEnd;
          break;
        }
      }
    }
  }

  /** The server closed the connection (clean EOF). */
  eof(): void {
    if (this.state === State.Done) return;
    if (this.state === State.UntilClose) return this.finish();
    this.fail(this.state === State.Head ? 'the server closed the connection before a complete response head' : 'the server closed the connection before the response body ended', true);
  }

  private onHead(text: string): boolean {
    const ls = lines(text);
    const m = STATUS_LINE.exec(ls[0] ?? '');
    if (!m) {
      this.fail(`malformed status line ${JSON.stringify((ls[0] ?? '').slice(0, 80))}`);
      return false;
    }
    const status = Number(m[2]);
    const headers = fields(ls);
    if (typeof headers === 'string') {
      this.fail(headers);
      return false;
    }
    if (status >= 100 && status < 200 && status !== 101) {
      if (++this.interim > MAX_INTERIM) {
        this.fail(`more than ${MAX_INTERIM} interim (1xx) responses`);
        return false;
      }
      return true; // the final response follows
    }
    const te = headers['transfer-encoding'];
    const cl = headers['content-length'];
    let length = -1;
    if (te === undefined && cl !== undefined) {
      const values = new Set(cl.flatMap((v) => v.split(',').map((x) => x.trim())));
      const [v] = values;
      if (values.size !== 1 || !/^\d{1,15}$/.test(v!)) {
        this.fail(`invalid Content-Length ${JSON.stringify(cl.join(', '))}`);
        return false;
      }
      length = Number(v);
    }
    this.ev.head({ status, protocol: m[1] === '1' ? 'HTTP/1.1' : 'HTTP/1.0', headers });
    if (this.done) return false; // the handler stopped the exchange
    if (this.noBody || status === 204 || status === 304 || status === 101) this.finish();
    else if (te !== undefined) this.state = /(?:^|,)\s*chunked\s*$/i.test(te.join(',')) ? State.ChunkSize : State.UntilClose;
    else if (length === 0) this.finish();
    else if (length > 0) {
      this.remaining = length;
      this.state = State.Length;
    } else this.state = State.UntilClose;
    return this.state !== State.Done;
  }

  /** Stops reporting (the caller ended the exchange). */
  stop(): void {
    this.state = State.Done;
    this.pending = EMPTY;
  }

  private finish(): void {
    this.state = State.Done;
    this.pending = EMPTY;
    this.ev.end();
  }

  private fail(message: string, closed = false): void {
    this.state = State.Done;
    this.pending = EMPTY;
    this.ev.error(message, closed);
  }
}

/** Writes `req` on `sock` and feeds its bytes to a parser; returns the parser (its `stop` ends reporting). */
export function sendHttp1(sock: Socket, req: Http1Request, ev: Http1Events & { firstByte(): void }): Http1ResponseParser {
  const parser = new Http1ResponseParser(ev, req.method === 'HEAD');
  let first = true;
  sock.on('data', (d: Buffer) => {
    if (first) {
      first = false;
      ev.firstByte();
    }
    parser.push(d);
  });
  sock.on('end', () => parser.eof());
  sock.write(encodeRequest(req));
  return parser;
}
