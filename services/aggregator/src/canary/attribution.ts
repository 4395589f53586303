/**
 * Where a latency regression lives, from the HTTP phases and the kernel's TCP data:
 * network (kernel connect RTT / srtt, or the connect phase, up), DNS, TLS, server
 * processing (time to first byte up while the RTT is steady: an application
 * regression) or transfer. Each component's change is a Hodges-Lehmann shift in
 * seconds with a one-sided Mann-Whitney p-value; a component increased when that is
 * significant, above 20 µs and 2 % of its median, and ≥ 10 % of the largest such shift.
 * The component with the largest increase is the primary one.
 */
import { hodgesLehmann, mannWhitney, quantile, sorted } from './stats';

/** Components a regression is attributed to. */
export type Component = 'network' | 'dns' | 'tls' | 'server_processing' | 'transfer';

/** Series feeding each component (first available wins for `network`). */
export const COMPONENT_SOURCES: Readonly<Record<Component, readonly string[]>> = {
  network: ['probe_tcp_kernel_connect_seconds', 'probe_tcp_srtt_seconds', 'phase_connect'],
  dns: ['phase_resolve'],
  tls: ['phase_tls'],
  server_processing: ['phase_processing'],
  transfer: ['phase_transfer'],
};

/** Evidence of one component. */
export interface ComponentChange {
  component: Component;
  /** Series used. */
  source: string;
  /** Medians per arm, seconds. */
  baselineMedian: number;
  canaryMedian: number;
  /** Hodges-Lehmann shift canary − baseline, seconds, with its 99 % interval. */
  shiftSeconds: number;
  shiftLower: number;
  shiftUpper: number;
  /** Canary/baseline median ratio. */
  ratio: number;
  /** One-sided Mann-Whitney p-value (canary larger). */
  pValue: number;
  /** Increase judged real: p < the attribution level and shift above noise. */
  increased: boolean;
  /** Share of the summed significant increases. */
  share: number;
  samples: { baseline: number; canary: number };
}

/** The attribution reported with a verdict. */
export interface Attribution {
  /** Primary component, or "none" when no component increased. */
  primary: Component | 'none';
  /** One sentence. */
  summary: string;
  /** Every component with data. */
  components: ComponentChange[];
  /** Components without data (e.g. no eBPF kernel series). */
  missing: string[];
}

const MIN_SHIFT_S = 20e-6;
const MATERIAL_SHARE = 0.1;

/** Per-series samples of both arms (seconds). */
export type PhaseSamples = ReadonlyMap<string, { baseline: ArrayLike<number>; canary: ArrayLike<number> }>;

/** Options of {@link attribute}. */
export interface AttributionOptions {
  /** Significance level per component. @default 0.001 */
  alpha?: number;
  /** Smallest relative median change counted (noise floor). @default 0.02 */
  minRelative?: number;
  /** Fewest samples per arm. @default 20 */
  minSamples?: number;
}

/** Attributes the change between arms to components. */
export function attribute(phases: PhaseSamples, opts: AttributionOptions = {}): Attribution {
  const alpha = opts.alpha ?? 0.001;
  const minRel = opts.minRelative ?? 0.02;
  const minN = opts.minSamples ?? 20;
  const components: ComponentChange[] = [];
  const missing: string[] = [];
  for (const [component, sources] of Object.entries(COMPONENT_SOURCES) as [Component, readonly string[]][]) {
    const source = sources.find((s) => {
      const p = phases.get(s);
      return p && p.baseline.length >= minN && p.canary.length >= minN;
    });
    if (!source) {
      missing.push(component);
      continue;
    }
    const p = phases.get(source)!;
    const b = sorted(p.baseline);
    const c = sorted(p.canary);
    const mw = mannWhitney(b, c);
    const hl = hodgesLehmann(b, c, 0.99);
    const bm = quantile(b, 0.5);
    const cm = quantile(c, 0.5);
    const ratio = bm > 0 ? cm / bm : cm > 0 ? Infinity : 1;
    // Tiny phases (e.g. resolve of an IP literal, ~µs) are noise even when "significant".
    const increased = mw.pGreater < alpha && hl.shift > MIN_SHIFT_S && hl.shift > minRel * bm;
    components.push({ component, source, baselineMedian: bm, canaryMedian: cm, shiftSeconds: hl.shift, shiftLower: hl.lower, shiftUpper: hl.upper, ratio, pValue: mw.pGreater, increased, share: 0, samples: { baseline: b.length, canary: c.length } });
  }
  // With thousands of samples a 50 µs scheduling difference is "significant"; a component
  // counts only when its shift is a material part (≥ 10 %) of the largest one.
  const largest = Math.max(0, ...components.filter((c) => c.increased).map((c) => c.shiftSeconds));
  for (const c of components) if (c.increased && c.shiftSeconds < MATERIAL_SHARE * largest) c.increased = false;
  const up = components.filter((c) => c.increased);
  const total = up.reduce((s, c) => s + c.shiftSeconds, 0);
  for (const c of up) c.share = total > 0 ? c.shiftSeconds / total : 0;
  const primary = up.sort((a, b) => b.shiftSeconds - a.shiftSeconds)[0];
  const network = components.find((c) => c.component === 'network');
  let summary: string;
  if (!primary) summary = 'no phase increased significantly';
  else {
    const ms = (s: number) => `${(s * 1000).toFixed(2)} ms`;
    const what: Record<Component, string> = {
      network: `network: ${primary.source} up ${ms(primary.shiftSeconds)} (RTT regression, not the application)`,
      dns: `DNS resolution up ${ms(primary.shiftSeconds)}`,
      tls: `TLS handshake up ${ms(primary.shiftSeconds)}`,
      server_processing: `server processing: time to first byte up ${ms(primary.shiftSeconds)}${network && !network.increased ? ` while RTT (${network.source}) is steady — an application regression` : ''}`,
      transfer: `transfer (body download) up ${ms(primary.shiftSeconds)}`,
    };
    summary = `${what[primary.component]} (${(primary.share * 100).toFixed(0)} % of the increase)`;
  }
  return { primary: primary?.component ?? 'none', summary, components, missing };
}
