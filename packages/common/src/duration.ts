/**
 * Prometheus-style durations ("1m30s", "250ms", "5s", "1h"), as used by
 * blackbox_exporter and Prometheus configs.
 */

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_536_000_000,
};

const DURATION_RE = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;

/**
 * Parses a Prometheus duration into milliseconds. Returns undefined when the text is
 * not a valid duration (empty, unknown unit, units out of order).
 */
export function parseDurationMs(text: string): number | undefined {
  if (text === '0') return 0;
  const m = DURATION_RE.exec(text);
  if (!m || text === '') return undefined;
  const units = ['y', 'w', 'd', 'h', 'm', 's', 'ms'];
  let total = 0;
  for (let i = 0; i < units.length; i++) {
    const v = m[i + 1];
    if (v !== undefined) total += Number(v) * (UNIT_MS[units[i]!] ?? 0);
  }
  return total;
}

/** Formats milliseconds as the shortest Prometheus duration ("1m30s", "250ms"). */
export function formatDurationMs(ms: number): string {
  if (ms === 0) return '0s';
  let rest = Math.round(ms);
  let out = '';
  for (const u of ['y', 'w', 'd', 'h', 'm', 's', 'ms']) {
    const size = UNIT_MS[u]!;
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${u}`;
      rest %= size;
    }
  }
  return out;
}
