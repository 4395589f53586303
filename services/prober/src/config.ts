/** The prober's configuration (`probemesh prober --config prober.yaml`). */
import { hostname } from 'node:os';
import { addIssue, bool, duration, httpSchema, Infer, logSchema, natsSchema, num, obj, optional, resultsStreamFields, str } from '@probemesh/common';
import { modulesSchema } from './modules';

/** The host name as a NATS subject token ("edge-1.example.com" → "edge-1-example-com"). */
function defaultId(): string {
  return hostname().replace(/[^A-Za-z0-9_-]/g, '-') || 'prober';
}

/** Prober configuration schema (snake_case keys, defaults documented per key). */
export const proberConfigSchema = obj(
  {
    id: str({ default: defaultId(), nonEmpty: true, pattern: /^[A-Za-z0-9_-]+$/, doc: 'Prober id, unique in the mesh (a NATS subject token: letters, digits, "-", "_"). @default os.hostname() with other characters replaced by "-"' }),
    region: str({ default: 'local', nonEmpty: true, doc: 'Region the prober runs in. @default "local"' }),
    zone: str({ default: 'default', nonEmpty: true, doc: 'Zone the prober runs in (the `zone` label). @default "default"' }),
    capacity: num({ int: true, min: 1, default: 1, doc: 'Relative capacity (placement weight). @default 1' }),
    nats: natsSchema,
    stream: obj(resultsStreamFields, { doc: 'PM_RESULTS settings, used only when this prober has to create the stream (it is missing); an existing stream keeps the limits the coordinator and aggregators set.' }),
    http: httpSchema('0.0.0.0:9115'),
    heartbeat_interval: duration({ default: '1s', minMs: 50, doc: 'Time between two heartbeats. @default "1s"' }),
    publish: obj({
      max_batch: num({ int: true, min: 1, default: 500, doc: 'Most results in one published batch. @default 500' }),
      max_delay: duration({ default: '200ms', minMs: 1, doc: 'Longest a result waits before its batch is published. @default "200ms"' }),
      max_buffered_results: num({ int: true, min: 1, default: 100_000, doc: 'Most results held while JetStream is unavailable; beyond it the oldest are dropped (counted in probemesh_prober_results_dropped_total). @default 100000' }),
    }),
    max_concurrency: num({ int: true, min: 1, default: 1000, doc: 'Most probes running at once. @default 1000' }),
    ebpf: obj({
      enabled: bool({ default: true, doc: 'Take kernel TCP measurements per probe with bpftrace (needs root, bpftrace, BTF); when unavailable probing goes on without them and probemesh_ebpf_info says why. @default true' }),
      bpftrace_path: str({ default: 'bpftrace', nonEmpty: true, doc: 'bpftrace executable (path or name in PATH). @default "bpftrace"' }),
      program: optional(str({ nonEmpty: true, doc: 'bpftrace program to run (default: bpf/probemesh-tcp.bt of the installation).' })),
      attach_timeout: duration({ default: '30s', minMs: 1000, doc: 'Longest wait for bpftrace to attach its probes. @default "30s"' }),
    }),
    clock: obj({
      poll_interval: duration({ default: '10s', minMs: 100, doc: 'Time between two reads of the clock sync state (pmc, chronyc, adjtimex). @default "10s"' }),
      pmc_path: str({ default: 'pmc', doc: 'linuxptp pmc (path or name; "" = do not ask). @default "pmc"' }),
      chronyc_path: str({ default: 'chronyc', doc: 'chronyc (path or name; "" = do not ask). @default "chronyc"' }),
      adjtimex: bool({ default: true, doc: "Read the kernel's sync state with adjtimex(2) through a small C helper compiled with cc on first use. @default true" }),
    }),
    modules_file: optional(str({ nonEmpty: true, doc: 'A blackbox_exporter config file (blackbox.yml) whose `modules:` this prober loads, overriding the built-in ones. @default none' })),
    modules: optional(modulesSchema),
    probe_timeout_offset: duration({ default: '500ms', doc: '/probe: subtracted from X-Prometheus-Scrape-Timeout-Seconds (blackbox --timeout-offset). @default "500ms"' }),
    log: logSchema,
  },
  {
    check(v, path, ctx) {
      if (v.publish.max_buffered_results < v.publish.max_batch) addIssue(ctx, path ? `${path}.publish.max_buffered_results` : 'publish.max_buffered_results', `must be >= publish.max_batch (${v.publish.max_batch})`);
    },
  },
);

/** Parsed prober configuration. */
export type ProberConfig = Infer<typeof proberConfigSchema>;
