/** The prober's clock metrics, read at scrape time from the sync monitor. */
import { Gauge, Registry } from 'prom-client';
import type { ClockSyncStatus } from './sync';

/** Registers probemesh_clock_* on `registry`. */
export function registerClockMetrics(registry: Registry, status: () => ClockSyncStatus): void {
  const registers = [registry];
  let source: string | undefined;
  const info = new Gauge({ name: 'probemesh_clock_info', help: 'Clock sync source (ptp, ntp or none): 1 for the current one.', labelNames: ['source'] as const, registers });
  new Gauge({
    name: 'probemesh_clock_synced',
    help: 'Whether the system clock is synchronised to its source (1) or not (0).',
    registers,
    collect() {
      const s = status();
      this.set(s.synced ? 1 : 0);
      if (source !== s.source) {
        info.reset();
        info.set({ source: s.source }, 1);
        source = s.source;
      }
    },
  });
  new Gauge({ name: 'probemesh_clock_offset_seconds', help: 'System clock minus its sync source, seconds (0 when unknown).', registers, collect() { this.set(Number(status().offsetNs) / 1e9); } });
  new Gauge({ name: 'probemesh_clock_error_bound_seconds', help: 'Estimated maximum error of the system clock, seconds (0 = unknown).', registers, collect() { this.set(Number(status().errorBoundNs) / 1e9); } });
}
