/**
 * Pull-style reads (a line, n bytes, "enough to decode") over a push-style socket, for
 * the line/length-framed protocols the tcp, dns and thrift probes speak. `detach()` hands
 * the socket over untouched (STARTTLS wraps it in TLS).
 */
import { Duplex } from 'node:stream';

/** Why a read ended without data. */
export class StreamClosedError extends Error {
  override readonly name = 'StreamClosedError';
  constructor(message: string, readonly code: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Buffers a stream's data and serves reads in order. */
export class StreamReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly onData = (c: Buffer): void => {
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };
  private readonly onError = (err: Error): void => {
    this.failure ??= err;
    this.notify();
  };

  constructor(private readonly stream: Duplex) {
    stream.on('data', this.onData);
    stream.on('end', this.onEnd);
    stream.on('close', this.onEnd);
    stream.on('error', this.onError);
  }

  /** Bytes received and not yet read. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Makes pending and later reads fail with `err` (e.g. on abort). */
  fail(err: Error): void {
    this.failure ??= err;
    this.notify();
  }

  /** Stops reading the stream (pauses it) and returns any unread bytes. */
  detach(): Buffer {
    this.stream.pause();
    this.stream.removeListener('data', this.onData);
    this.stream.removeListener('end', this.onEnd);
    this.stream.removeListener('close', this.onEnd);
    this.stream.removeListener('error', this.onError);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /**
   * Waits until `take(buffer)` returns a count of bytes to consume (it returns undefined
   * while it needs more), then returns those bytes. Returns null at end of stream.
   */
  async read(take: (buf: Buffer, ended: boolean) => number | undefined): Promise<Buffer | null> {
    for (;;) {
      if (this.failure) throw this.failure;
      const n = take(this.buf, this.ended);
      if (n !== undefined) {
        const out = this.buf.subarray(0, n);
        this.buf = this.buf.subarray(n);
        return out;
      }
      if (this.ended) return null;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  /** One line without its `\n` (and `\r`); the rest at end of stream; null when nothing is left. */
  async line(): Promise<string | null> {
    const b = await this.read((buf, ended) => {
      const i = buf.indexOf(0x0a);
      if (i >= 0) return i + 1;
      return ended && buf.length > 0 ? buf.length : undefined;
    });
    if (b === null) return null;
    return b.toString('utf8').replace(/\r?\n$/, '');
  }

  /** Exactly `n` bytes, or null when the stream ends first. */
  exact(n: number): Promise<Buffer | null> {
    return this.read((buf) => (buf.length >= n ? n : undefined));
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }
}
