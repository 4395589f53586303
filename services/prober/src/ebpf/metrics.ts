/** The prober's eBPF metrics: up, why not, and what the event stream did. */
import { Counter, Gauge, Registry } from 'prom-client';
import type { EbpfRunner, EbpfStatus } from './runner';

/** Registers the eBPF metrics of `runner` on `registry` (values read at scrape time). */
export function registerEbpfMetrics(registry: Registry, runner: EbpfRunner): void {
  const registers = [registry];
  let reported: EbpfStatus | undefined;
  const info = new Gauge({ name: 'probemesh_ebpf_info', help: 'Why eBPF kernel measurements are down ("" when up): 1 for the current reason.', labelNames: ['reason'] as const, registers });
  new Gauge({
    name: 'probemesh_ebpf_up',
    help: 'Whether eBPF kernel TCP measurements are being taken (1) or not (0; see probemesh_ebpf_info).',
    registers,
    collect() {
      const st = runner.status();
      this.set(st.up ? 1 : 0);
      if (reported?.reason !== st.reason) {
        info.reset();
        info.set({ reason: st.reason }, 1);
        reported = st;
      }
    },
  });
  const counter = (name: string, help: string, read: () => number): void => {
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };
  counter('probemesh_ebpf_events_total', 'Per-socket lines received from bpftrace.', () => runner.counts.events);
  counter('probemesh_ebpf_lost_events_total', 'Events bpftrace reported lost (perf buffer full).', () => runner.counts.lost);
  new Counter({
    name: 'probemesh_ebpf_joins_total',
    help: 'Probe sockets joined to kernel data (matched) or not found in the kernel stream (unmatched); evicted = kernel lines no probe claimed.',
    labelNames: ['result'] as const,
    registers,
    collect() {
      this.reset();
      const c = runner.joiner.counts;
      this.inc({ result: 'matched' }, c.matched);
      this.inc({ result: 'unmatched' }, c.unmatched);
      this.inc({ result: 'evicted' }, c.evicted);
    },
  });
}
