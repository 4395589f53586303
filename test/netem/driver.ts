/**
 * Runs inside the client namespace (spawned with nsenter by the accuracy test and bench):
 * starts the eBPF runner for this process, then in rounds, alternating, takes truth
 * samples (conntimer), probemesh http probes (kernel + user-space connect), and, when a
 * blackbox_exporter URL is given, blackbox tcp_connect / http_2xx probes. With `pairwise`,
 * each truth connect is taken right next to one probe (truth first, then probe first, in
 * turn), so both halves of a pair cross the path under the same load. One JSON line per
 * sample on stdout; the last line is `{"done":true,...}`.
 *
 *   node driver.js '{"addr":"10.77.0.2","port":8080,"rounds":3,"perRound":10,...}'
 */
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { AnchoredClock, silentLogger } from '@probemesh/common';
import { EbpfRunner, kernelNote, ProbeModules } from '@probemesh/prober';

/** Driver arguments. */
export interface DriverArgs {
  addr: string;
  port: number;
  rounds: number;
  perRound: number;
  /** conntimer binary; omitted = no truth samples. */
  conntimer?: string;
  /**
   * Take truth and probemesh samples in pairs, one truth connect next to each probe,
   * alternating which goes first (default: a batch of `perRound` truth connects, then
   * `perRound` probes).
   */
  pairwise?: boolean;
  /**
   * Pause after each sample in pairwise mode, ms (default 5); the accuracy test makes it
   * longer than the previous connection's teardown (one delayed round trip), so every
   * connect starts on an idle path.
   */
  gapMs?: number;
  /** Truth connects busy-poll (`conntimer --spin`) instead of blocking. */
  spin?: boolean;
  /** blackbox_exporter base URL (in this namespace); omitted = none. */
  blackbox?: string;
  timeoutMs?: number;
}

/** One sample line. */
export type Sample =
  | { kind: 'truth'; ns: number }
  | { kind: 'pm'; success: boolean; failureCode: string; userConnectNs: number; kernel: null | { connectNs: number; firstByteNs: number; srttUs: number; retransmits: number; synRetransmits: number; resets: number }; note: string }
  | { kind: 'bb_tcp'; ns: number }
  | { kind: 'bb_http_connect'; ns: number };

const emit = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

async function blackbox(base: string, module: string, target: string, metric: RegExp): Promise<number | undefined> {
  const res = await fetch(`${base}/probe?module=${module}&target=${encodeURIComponent(target)}`);
  const text = await res.text();
  const m = metric.exec(text);
  return m ? Math.round(Number(m[1]) * 1e9) : undefined;
}

async function main(): Promise<void> {
  const a = JSON.parse(process.argv[2] ?? '{}') as DriverArgs;
  const log = silentLogger();
  const clock = new AnchoredClock();
  const runner = new EbpfRunner({ log });
  const status = await runner.start();
  const modules = new ProbeModules();
  const url = `http://${a.addr}:${a.port}/`;
  const timeoutMs = a.timeoutMs ?? 5000;
  const truth = (n: number): void => {
    const out = execFileSync(a.conntimer!, [a.addr, String(a.port), String(n), '5'], { encoding: 'utf8' });
    for (const l of out.split('\n').filter(Boolean)) if (Number(l) > 0) emit({ kind: 'truth', ns: Number(l) });
  };
  const pairwise = a.pairwise === true && a.conntimer !== undefined;
  // Pairwise: one conntimer process for the whole run, one connect per line written to it
  // (no process start between the halves of a pair; its first connect is a warm-up).
  const timer = pairwise ? spawn(a.conntimer!, [...(a.spin ? ['--spin'] : []), a.addr, String(a.port), '-'], { stdio: ['pipe', 'pipe', 'inherit'] }) : undefined;
  const timerLines = timer ? createInterface({ input: timer.stdout! })[Symbol.asyncIterator]() : undefined;
  const truthOne = async (): Promise<void> => {
    timer!.stdin!.write('\n');
    const { value, done } = await timerLines!.next();
    if (done) throw new Error(`conntimer exited (${timer!.exitCode ?? timer!.signalCode})`);
    if (Number(value) > 0) emit({ kind: 'truth', ns: Number(value) });
    await new Promise((res) => setTimeout(res, a.gapMs ?? 5));
  };
  if (timer) {
    // Warm-up: the first connect of a process is not a sample.
    timer.stdin!.write('\n');
    await timerLines!.next();
  }
  for (let r = 0; r < a.rounds; r++) {
    if (a.conntimer && !pairwise) truth(a.perRound);
    for (let i = 0; i < a.perRound; i++) {
      const truthFirst = (r * a.perRound + i) % 2 === 0;
      if (pairwise && truthFirst) await truthOne();
      const out = await modules.run({ id: url, url, module: 'http_2xx', timeoutMs, labels: {} }, AbortSignal.timeout(timeoutMs), { clock, log });
      const k = out.socketInfo ? await runner.join(out.socketInfo) : undefined;
      const connect = out.phases.find((p) => p.name === 'connect');
      emit({
        kind: 'pm',
        success: out.success,
        failureCode: out.failureCode,
        userConnectNs: Number(connect?.durationNs ?? 0n),
        kernel: k ? { connectNs: Number(k.connectNs), firstByteNs: Number(k.firstByteNs), srttUs: k.srttUs, retransmits: k.retransmits, synRetransmits: k.synRetransmits, resets: k.resets } : null,
        note: k ? kernelNote(k) : '',
      } satisfies Sample);
      await new Promise((res) => setTimeout(res, pairwise ? (a.gapMs ?? 5) : 5));
      if (pairwise && !truthFirst) await truthOne();
    }
    if (a.blackbox) {
      for (let i = 0; i < a.perRound; i++) {
        const tcp = await blackbox(a.blackbox, 'tcp_connect', `${a.addr}:${a.port}`, /^probe_duration_seconds ([0-9.e+-]+)$/m);
        if (tcp !== undefined) emit({ kind: 'bb_tcp', ns: tcp });
        // Pairwise: blackbox's connects start on an idle path too (the previous teardown done).
        if (pairwise) await new Promise((res) => setTimeout(res, a.gapMs ?? 5));
        const http = await blackbox(a.blackbox, 'http_2xx', url, /^probe_http_duration_seconds\{phase="connect"\} ([0-9.e+-]+)$/m);
        if (http !== undefined) emit({ kind: 'bb_http_connect', ns: http });
        if (pairwise) await new Promise((res) => setTimeout(res, a.gapMs ?? 5));
      }
    }
  }
  if (timer) {
    timer.stdin!.end();
    await new Promise((res) => (timer.exitCode !== null ? res(undefined) : timer.once('close', res)));
  }
  emit({ done: true, ebpf: status, joins: runner.joiner.counts, lost: runner.counts.lost });
  await runner.stop();
}

main().catch((err: Error) => {
  process.stderr.write(`driver: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
