/**
 * The probe protocols this prober knows: `prober:` value → factory. A new protocol is
 * one file in this directory plus one line here.
 */
import { Schema } from '@probemesh/common';
import { httpProbe, httpProbeSchema, LookupFn } from './http';
import { Probe } from './types';

/** Dependencies a probe factory may take (injected in tests). */
export interface ProbeDeps {
  /** Host name resolver (http and later tcp/tls). */
  lookup?: LookupFn;
}

/** A probe protocol: its options schema and its factory. */
export interface ProbeKind<O> {
  /** Schema of the module's protocol block (e.g. blackbox `http:`). */
  readonly schema: Schema<O>;
  /** Builds a probe from parsed options. */
  create(options: O, deps: ProbeDeps): Probe;
}

/** Known protocols by blackbox `prober:` name. */
export const PROBE_KINDS = {
  http: { schema: httpProbeSchema, create: (o, d) => httpProbe(o, d) } as ProbeKind<import('./http').HttpProbeOptions>,
} as const;

/** A protocol name of {@link PROBE_KINDS}. */
export type ProbeKindName = keyof typeof PROBE_KINDS;

export * from './types';
export * from './failure';
export { httpProbe, httpProbeSchema, HTTP_PHASES, systemLookup } from './http';
export type { HttpProbeOptions, LookupFn } from './http';
