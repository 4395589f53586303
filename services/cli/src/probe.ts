/**
 * `probemesh probe URL`: one probe, run right here with the prober's own modules, printing
 * its phases and (as root, with bpftrace) what the kernel saw on the connection — a
 * `curl -w` for API latency.
 */
import { AnchoredClock, formatDurationMs, parseDurationMs, silentLogger, targetId } from '@probemesh/common';
import { EbpfRunner, KernelTcp, loadModuleDefinitions, outcomeDurationNs, ProbeModules } from '@probemesh/prober';
import { Command, parse } from './command';
import { UsageError } from './errors';
import { renderTable } from './table';

const ms = (ns: bigint | number) => `${(Number(ns) / 1e6).toFixed(3)} ms`;

function kernelLines(k: KernelTcp): string[][] {
  return [
    ['kernel connect', ms(k.connectNs), 'SYN → SYN-ACK (incl. SYN retransmits)'],
    ['kernel first byte', k.firstByteNs ? ms(k.firstByteNs) : '-', 'ESTABLISHED → first data from the server'],
    ['srtt / rttvar', `${(k.srttUs / 1000).toFixed(3)} / ${(k.rttvarUs / 1000).toFixed(3)} ms`, 'smoothed RTT and its variance'],
    ['retransmits', `${k.retransmits} (SYN ${k.synRetransmits})`, ''],
    ['resets', String(k.resets), ''],
  ];
}

/** `probemesh probe`. */
export const probeCommand: Command = {
  name: 'probe',
  summary: 'Probe one target now, here, and print its phases and kernel timings',
  help: `Usage: probemesh probe URL [--module M] [--modules-file FILE] [--timeout D] [--no-kernel] [--json]

Runs one probe of URL (host:port for tcp, a name server for dns, a host for icmp) with a
probe module, like curl -w for API latency: each phase, the status, and, when running as
root with bpftrace, what the kernel saw on the TCP connection (SYN → SYN-ACK, first byte,
srtt, retransmits). Exit status 0 when the probe succeeds, 1 when it fails.

Options:
  --module M          probe module (default http_2xx); built-in: http_2xx, http_post_2xx,
                      tcp_connect, icmp, grpc, grpc_plain
  --modules-file F    blackbox_exporter blackbox.yml with more modules
  --timeout D         probe timeout (default 5s)
  --no-kernel         skip eBPF (it takes a few seconds to attach)
  --json              print the result as JSON

Examples:
  probemesh probe https://api.example.com/health
  probemesh probe 10.0.0.7:5432 --module tcp_connect
  probemesh probe https://shop.example.com/ --modules-file /etc/prometheus/blackbox.yml --module http_2xx_h2`,
  async run(args) {
    const { values, positionals } = parse('probe', args, { module: { type: 'string' }, 'modules-file': { type: 'string' }, timeout: { type: 'string' }, 'no-kernel': { type: 'boolean', default: false }, json: { type: 'boolean', default: false } });
    if (positionals.length !== 1) throw new UsageError('probe: give exactly one target (see probemesh probe --help)');
    const url = positionals[0]!;
    const module = values.module ?? 'http_2xx';
    const timeoutMs = values.timeout === undefined ? 5000 : parseDurationMs(values.timeout);
    if (timeoutMs === undefined || timeoutMs <= 0) throw new UsageError(`probe: --timeout ${JSON.stringify(values.timeout)} is not a duration (e.g. 5s)`);
    const modules = new ProbeModules(loadModuleDefinitions({ modules_file: values['modules-file'] }));
    if (!modules.has(module)) throw new UsageError(`probe: unknown module ${JSON.stringify(module)} (known: ${modules.names().join(', ')})`);

    const log = silentLogger();
    const ebpf = new EbpfRunner({ enabled: !values['no-kernel'], log });
    const ebpfStatus = await ebpf.start();
    try {
      const clock = new AnchoredClock();
      const startNs = clock.nowNs();
      const t0 = clock.monoNs();
      const outcome = await modules.run({ id: targetId(module, url), url, module, timeoutMs: modules.effectiveTimeoutMs(module, timeoutMs), labels: {} }, AbortSignal.timeout(timeoutMs), { clock, log });
      const durationNs = outcomeDurationNs(outcome, clock.monoNs() - t0);
      const kernel = outcome.socketInfo && ebpfStatus.up ? await ebpf.join(outcome.socketInfo) : undefined;
      if (values.json) {
        process.stdout.write(
          JSON.stringify(
            {
              target: url,
              module,
              start: new Date(Number(startNs / 1_000_000n)).toISOString(),
              success: outcome.success,
              failure_code: outcome.failureCode || undefined,
              failure_message: outcome.failureMessage || undefined,
              duration_seconds: Number(durationNs) / 1e9,
              http_status_code: outcome.httpStatusCode || undefined,
              http_version: outcome.httpVersion || undefined,
              phases: Object.fromEntries(outcome.phases.map((p) => [p.name, Number(p.durationNs) / 1e9])),
              kernel: kernel ? { connect_seconds: Number(kernel.connectNs) / 1e9, first_byte_seconds: Number(kernel.firstByteNs) / 1e9, srtt_seconds: kernel.srttUs / 1e6, rttvar_seconds: kernel.rttvarUs / 1e6, retransmits: kernel.retransmits, syn_retransmits: kernel.synRetransmits, resets: kernel.resets } : { unavailable: ebpfStatus.up ? 'no kernel record for this connection' : ebpfStatus.reason },
              gauges: outcome.gauges.map((g) => ({ name: g.name, value: g.value, labels: g.labels ?? {} })),
            },
            null,
            2,
          ) + '\n',
        );
      } else {
        const status = outcome.httpStatusCode ? ` (HTTP ${outcome.httpStatusCode}${outcome.httpVersion ? `, HTTP/${outcome.httpVersion === 2 ? '2' : outcome.httpVersion.toFixed(1)}` : ''})` : '';
        const verdict = outcome.success ? `success${status}` : `FAILED ${outcome.failureCode}${status}: ${outcome.failureMessage}`;
        const lines = [`${url} [${module}] ${verdict} in ${ms(durationNs)}`, '', renderTable(['PHASE', 'DURATION'], outcome.phases.map((p) => [p.name, ms(p.durationNs)]))];
        lines.push('', kernel ? renderTable(['KERNEL (eBPF)', 'VALUE', ''], kernelLines(kernel)) : `kernel: ${ebpfStatus.up ? 'no record of this connection' : `unavailable (${ebpfStatus.reason})`}`);
        if (kernel && outcome.phases.some((p) => p.name === 'connect')) {
          const user = outcome.phases.find((p) => p.name === 'connect')!.durationNs;
          lines.push(`user-space connect − kernel connect = ${ms(user - kernel.connectNs)} (the agent's own overhead)`);
        }
        if (outcome.gauges.length) lines.push('', renderTable(['METRIC', 'VALUE'], outcome.gauges.map((g) => [`${g.name}${g.labels && Object.keys(g.labels).length ? `{${Object.entries(g.labels).map(([k, v]) => `${k}="${v}"`).join(',')}}` : ''}`, String(g.value)])));
        lines.push('', `timeout ${formatDurationMs(timeoutMs)}`);
        process.stdout.write(lines.join('\n') + '\n');
      }
      return outcome.success ? 0 : 1;
    } finally {
      await ebpf.stop();
    }
  },
};
