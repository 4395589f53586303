#!/usr/bin/env node
// Scale test (issue 10): the whole mesh on this machine — a 3-node nats-server cluster
// (PM_RESULTS and the KV buckets with 3 replicas), Prometheus 2.42, one coordinator,
// PROBERS prober processes, AGGREGATORS aggregator processes, and TARGETS HTTP targets
// (distinct URLs, "virtual hosts" spread over a few local target server processes) at
// INTERVAL_MS, for DURATION_S after a warm-up. In the middle one prober is killed with
// SIGKILL. Every few seconds the bench reads the /metrics of every prober and aggregator
// and /proc of every process (CPU, RSS). At the end the probers are stopped, the
// aggregators drain, and every result in PM_RESULTS (decoded from the stream) is counted
// against the probe_success samples Prometheus stored: lost = published − stored.
//
//   npm run bench -- scale                      (10,000 targets at 1 s, 600 s: the issue's figure)
//   TARGETS=2000 DURATION_S=60 npm run bench -- scale   (a quick run)
// Env: TARGETS, INTERVAL_MS, TIMEOUT_MS, DURATION_S, WARMUP_S, PROBERS, AGGREGATORS,
// SERVERS (target server processes), SAMPLE_S, EBPF (0/1), KILL (0/1), LABEL (results key),
// RW_SHARDS and RW_MAX_PER_SEND (the aggregators' remote_write shards / max_samples_per_send).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const h = require(join(root, 'test/dist/harness'));
const { createAdminClient } = require('@probemesh/coordinator');
const { STREAM_RESULTS, toNumber } = require('@probemesh/common');
const { probemesh } = require('@probemesh/proto');
const { connect, AckPolicy, DeliverPolicy } = require('nats');

const env = (k, d) => (process.env[k] === undefined || process.env[k] === '' ? d : Number(process.env[k]));
const TARGETS = env('TARGETS', 10_000);
const INTERVAL_MS = env('INTERVAL_MS', 1000);
const TIMEOUT_MS = env('TIMEOUT_MS', Math.min(800, Math.floor(INTERVAL_MS * 0.8)));
const DURATION_S = env('DURATION_S', 600);
const WARMUP_S = env('WARMUP_S', 30);
const PROBERS = env('PROBERS', 3);
const AGGREGATORS = env('AGGREGATORS', 2);
const SERVERS = env('SERVERS', 2);
const SAMPLE_S = env('SAMPLE_S', 5);
const EBPF = env('EBPF', 0) === 1;
const KILL = env('KILL', 1) === 1;
// Aggregator remote_write tuning (defaults: the aggregator's own, 4 shards × 2,000 samples).
const RW_SHARDS = env('RW_SHARDS', 0);
const RW_MAX_PER_SEND = env('RW_MAX_PER_SEND', 0);
const RW_EXTRA = `${RW_SHARDS ? `    shards: ${RW_SHARDS}\n` : ''}${RW_MAX_PER_SEND ? `    max_samples_per_send: ${RW_MAX_PER_SEND}\n` : ''}`;
const LABEL = process.env.LABEL || `${TARGETS}x${INTERVAL_MS}ms`;
const CLI = join(root, 'services/cli/dist/main.js');
const TICK = 100; // USER_HZ

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const q = (xs, p) => {
  if (!xs.length) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

function procStat(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { cpu: (Number(f[11]) + Number(f[12])) / TICK, rssMiB: Number(/VmRSS:\s+(\d+)/.exec(st)[1]) / 1024, hwmMiB: Number(/VmHWM:\s+(\d+)/.exec(st)[1]) / 1024 };
  } catch {
    return undefined;
  }
}

/** Prometheus text → [{ name, labels, value }] (no escapes in our label values). */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const kv of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="([^"]*)"/g)) labels[kv[1]] = kv[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}
const sum = (ms, name, pred = () => true) => ms.filter((m) => m.name === name && pred(m.labels)).reduce((a, m) => a + m.value, 0);

async function scrape(url) {
  try {
    const r = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(4000) });
    return parseMetrics(await r.text());
  } catch {
    return undefined;
  }
}

/** p-quantile of a cumulative Prometheus histogram given as [{ le, count }] (linear in the bucket). */
function histQuantile(buckets, p) {
  const b = [...buckets].sort((x, y) => x.le - y.le);
  const total = b.at(-1)?.count ?? 0;
  if (!total) return NaN;
  const rank = p * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const { le, count } of b) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
function lagBuckets(ms) {
  return ms.filter((m) => m.name === 'probemesh_prober_scheduler_lag_seconds_bucket').map((m) => ({ le: m.labels.le === '+Inf' ? Infinity : Number(m.labels.le), count: m.value }));
}
const subBuckets = (a, b) => a.map((x) => ({ le: x.le, count: x.count - (b?.find((y) => y.le === x.le)?.count ?? 0) }));
const addBuckets = (a, b) => (a.length ? a.map((x) => ({ le: x.le, count: x.count + (b.find((y) => y.le === x.le)?.count ?? 0) })) : b);

/** Least-squares slope of ys over xs (per unit of x). */
function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den ? num / den : 0;
}

async function main() {
  const started = Date.now();
  const procs = new h.Procs();
  const dir = mkdtempSync(join(tmpdir(), 'pm-scale-'));
  const named = []; // { role, name, proc }
  const track = (role, name, proc) => (named.push({ role, name, proc }), proc);
  /** Throws if a service process of ours died (except the prober killed on purpose). */
  const assertAlive = () => {
    const dead = named.find((n) => n.proc.exitInfo?.() && !n.killed);
    if (dead) throw new Error(`${dead.name} exited: ${JSON.stringify(dead.proc.exitInfo())}`);
  };
  let admin;
  let cluster;
  let prom;
  const out = { label: LABEL, date: new Date().toISOString(), config: { TARGETS, INTERVAL_MS, TIMEOUT_MS, DURATION_S, WARMUP_S, PROBERS, AGGREGATORS, SERVERS, SAMPLE_S, EBPF, KILL, RW_SHARDS, RW_MAX_PER_SEND } };
  try {
    log(`scale: ${TARGETS} targets at ${INTERVAL_MS} ms over ${PROBERS} probers, ${AGGREGATORS} aggregators, 3-node NATS, Prometheus; ${DURATION_S} s after ${WARMUP_S} s warm-up`);
    cluster = await h.startNatsCluster(3, { procs, maxFileStore: '16GB' });
    cluster.nodes.forEach((n) => track('nats', n.name, { pid: n.pid }));
    prom = await h.startPrometheus({ procs });
    track('prometheus', 'prometheus', { pid: prom.pid });
    const servers = cluster.urls;
    // Target servers: bench/targets/target.c (single-threaded epoll, HTTP 200 "ok"), SERVERS
    // processes; the "virtual hosts" are distinct URLs spread over them.
    const targetBin = join(dir, 'target');
    execFileSync('gcc', ['-O2', '-o', targetBin, join(root, 'bench/targets/target.c')]);
    const serverPorts = [];
    for (let i = 0; i < SERVERS; i++) {
      const t = track('target', `target${i}`, procs.spawn(targetBin, [], { name: `target${i}` }));
      const ports = await h.waitFor(() => { try { return JSON.parse(t.output().split('\n')[0]); } catch { return undefined; } }, { timeoutMs: 10_000, what: `target server ${i} ports` });
      serverPorts.push(ports.http);
    }
    for (const port of serverPorts) await h.waitFor(async () => (await h.httpGet(`http://127.0.0.1:${port}/`).catch(() => ({ status: 0 }))).status === 200, { timeoutMs: 10_000, what: `target server :${port}` });

    const natsYaml = `nats:\n  servers: [${servers.map((s) => `"${s}"`).join(', ')}]\nstream:\n  replicas: 3\n  max_bytes: -1\n`;
    const grpcPort = await h.freePort();
    writeFileSync(join(dir, 'coordinator.yml'), `id: c1\n${natsYaml}grpc:\n  listen: 127.0.0.1:${grpcPort}\nhttp:\n  listen: 127.0.0.1:0\nkv_replicas: 3\nlog:\n  level: warn\n`);
    track('coordinator', 'c1', procs.spawn(process.execPath, [CLI, 'coordinator', '--config', join(dir, 'coordinator.yml')], { name: 'coordinator' }));
    admin = createAdminClient(`127.0.0.1:${grpcPort}`);
    await h.waitFor(async () => (await admin.listProbers({}).then(() => true).catch(() => false)), { timeoutMs: 30_000, what: 'coordinator gRPC' });

    const aggs = [];
    for (let i = 0; i < AGGREGATORS; i++) {
      const port = await h.freePort();
      const id = `a${i + 1}`;
      writeFileSync(join(dir, `${id}.yml`), `id: ${id}\njob: scale\n${natsYaml}http:\n  listen: 127.0.0.1:${port}\nremote_write:\n  - url: "${prom.writeUrl}"\n${RW_EXTRA}log:\n  level: warn\n`);
      aggs.push({ id, url: `http://127.0.0.1:${port}`, proc: track('aggregator', id, procs.spawn(process.execPath, [CLI, 'aggregator', '--config', join(dir, `${id}.yml`)], { name: id })) });
    }
    const probers = [];
    for (let i = 0; i < PROBERS; i++) {
      const port = await h.freePort();
      const id = `p${i + 1}`;
      writeFileSync(join(dir, `${id}.yml`), `id: ${id}\nzone: z${i + 1}\n${natsYaml.replace('  max_bytes: -1\n', '')}http:\n  listen: 127.0.0.1:${port}\nebpf:\n  enabled: ${EBPF}\nclock:\n  pmc_path: ""\n  chronyc_path: ""\nlog:\n  level: warn\n`);
      probers.push({ id, url: `http://127.0.0.1:${port}`, proc: track('prober', id, procs.spawn(process.execPath, [CLI, 'prober', '--config', join(dir, `${id}.yml`)], { name: id })), alive: true, last: undefined, first: undefined });
    }
    await h.waitFor(async () => (assertAlive(), (await admin.listProbers({})).probers.length === PROBERS), { timeoutMs: 60_000, what: `${PROBERS} probers registered` });

    const urls = Array.from({ length: TARGETS }, (_, i) => `http://127.0.0.1:${serverPorts[i % SERVERS]}/vhost/${i}`);
    const t0 = Date.now();
    // In calls of 1,000 like `probemesh targets import` does (each call writes its targets one by one).
    for (let i = 0; i < urls.length; i += 1000) await admin.importTargets({ format: 'list', content: urls.slice(i, i + 1000).join('\n'), intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS }, { timeoutMs: 120_000 });
    log(`imported ${TARGETS} targets in ${Date.now() - t0} ms`);
    await h.waitFor(
      async () => {
        let n = 0;
        for (const p of probers) n += sum((await scrape(p.url)) ?? [], 'probemesh_prober_targets');
        return n === TARGETS;
      },
      { timeoutMs: 120_000, intervalMs: 1000, what: 'all targets assigned' },
    );
    log(`all targets assigned; warm-up ${WARMUP_S} s`);
    await sleep(WARMUP_S * 1000);

    // ---- measured run ----
    const samples = [];
    const runStart = Date.now();
    const killAt = runStart + (DURATION_S * 1000) / 2;
    let killMs;
    const victim = probers.at(-1);
    const cpu0 = new Map(named.map((n) => [n.name, procStat(n.proc.pid)?.cpu ?? 0]));
    while (Date.now() - runStart < DURATION_S * 1000) {
      assertAlive();
      const at = Date.now();
      const s = { t: (at - runStart) / 1000, probers: {}, aggregators: {}, procs: {} };
      for (const p of probers) {
        if (!p.alive) continue;
        const ms = await scrape(p.url);
        if (!ms) continue;
        const snap = {
          probes: sum(ms, 'probemesh_prober_probes_total'),
          ok: sum(ms, 'probemesh_prober_probes_total', (l) => l.result === 'success'),
          missed: sum(ms, 'probemesh_prober_scheduler_missed_total'),
          late: sum(ms, 'probemesh_prober_scheduler_late_total'),
          inFlight: sum(ms, 'probemesh_prober_probes_in_flight'),
          published: sum(ms, 'probemesh_prober_results_published_total'),
          dropped: sum(ms, 'probemesh_prober_results_dropped_total'),
          buffered: sum(ms, 'probemesh_prober_results_buffered'),
          targets: sum(ms, 'probemesh_prober_targets'),
          lag: lagBuckets(ms),
        };
        p.first ??= snap;
        p.last = snap;
        s.probers[p.id] = { ...snap, lag: undefined };
      }
      for (const a of aggs) {
        const ms = await scrape(a.url);
        if (!ms) continue;
        s.aggregators[a.id] = {
          received: sum(ms, 'probemesh_aggregator_results_received_total'),
          sent: sum(ms, 'probemesh_aggregator_samples_sent_total'),
          dropped: sum(ms, 'probemesh_aggregator_samples_dropped_total'),
          pending: sum(ms, 'probemesh_aggregator_pending_messages'),
          queue: sum(ms, 'probemesh_aggregator_queue_samples'),
          held: sum(ms, 'probemesh_aggregator_held_messages'),
          owned: sum(ms, 'probemesh_aggregator_owned_probers'),
          storageLag: Math.max(0, ...ms.filter((m) => m.name === 'probemesh_aggregator_remote_storage_lag_seconds').map((m) => m.value)),
        };
      }
      for (const n of named) {
        const st = procStat(n.proc.pid);
        if (st) s.procs[n.name] = { cpu: st.cpu, rssMiB: st.rssMiB };
      }
      samples.push(s);
      const pr = Object.values(s.probers);
      const ag = Object.values(s.aggregators);
      const prev = samples.at(-2);
      const rate = prev ? (pr.reduce((a, x) => a + x.probes, 0) - Object.entries(prev.probers).filter(([k]) => s.probers[k]).reduce((a, [, x]) => a + x.probes, 0)) / (s.t - prev.t) : NaN;
      log(`t=${s.t.toFixed(0)}s probes/s≈${rate.toFixed(0)} in-flight ${pr.reduce((a, x) => a + x.inFlight, 0)} missed ${pr.reduce((a, x) => a + x.missed, 0)} buffered ${pr.reduce((a, x) => a + x.buffered, 0)} | backlog ${ag.reduce((a, x) => a + x.pending, 0)} msgs, aggregators (owned probers, held msgs, queued samples, storage lag) ${ag.map((x) => `${x.owned},${x.held},${x.queue},${x.storageLag.toFixed(1)}s`).join(' / ')}`);
      if (KILL && killMs === undefined && Date.now() >= killAt) {
        killMs = Date.now();
        victim.proc.kill('SIGKILL');
        victim.alive = false;
        named.find((n) => n.proc === victim.proc).killed = true;
        log(`kill -9 ${victim.id} (pid ${victim.proc.pid})`);
      }
      await sleep(Math.max(0, at + SAMPLE_S * 1000 - Date.now()));
    }
    const runEnd = Date.now();
    const cpu = {};
    for (const n of named) {
      const c = procStat(n.proc.pid)?.cpu;
      cpu[n.name] = c === undefined ? null : (c - cpu0.get(n.name)) / ((runEnd - runStart) / 1000);
    }
    const hwm = Object.fromEntries(named.map((n) => [n.name, procStat(n.proc.pid)?.hwmMiB ?? null]));

    // ---- stop probing, let the aggregators drain ----
    log('stopping probers (SIGTERM: they flush their buffers)');
    for (const p of probers.filter((x) => x.alive)) {
      const ms = await scrape(p.url);
      if (ms) p.final = { published: sum(ms, 'probemesh_prober_results_published_total'), dropped: sum(ms, 'probemesh_prober_results_dropped_total') };
      p.proc.kill('SIGTERM');
    }
    await Promise.all(probers.map((p) => p.proc.exited));
    const drainStart = Date.now();
    await h.waitFor(
      async () => {
        let pending = 0;
        for (const a of aggs) {
          const ms = await scrape(a.url);
          if (!ms) return false;
          pending += sum(ms, 'probemesh_aggregator_pending_messages') + sum(ms, 'probemesh_aggregator_queue_samples') + sum(ms, 'probemesh_aggregator_held_messages');
        }
        return pending === 0;
      },
      { timeoutMs: 30 * 60_000, intervalMs: 2000, what: 'aggregators drained' },
    );
    await sleep(6000); // pending_messages is refreshed every few seconds; let the last sends settle
    const drainS = (Date.now() - drainStart) / 1000;
    log(`aggregators drained ${drainS.toFixed(0)} s after the probers stopped`);
    const aggFinal = {};
    for (const a of aggs) {
      const ms = await h.waitFor(() => scrape(a.url), { timeoutMs: 300_000, intervalMs: 1000, what: `${a.id} /metrics` });
      const dropped = {};
      for (const m of ms.filter((x) => x.name === 'probemesh_aggregator_samples_dropped_total' && x.value > 0)) dropped[m.labels.reason] = (dropped[m.labels.reason] ?? 0) + m.value;
      aggFinal[a.id] = { received: sum(ms, 'probemesh_aggregator_results_received_total'), sent: sum(ms, 'probemesh_aggregator_samples_sent_total'), dropped: sum(ms, 'probemesh_aggregator_samples_dropped_total'), dropped_by_reason: dropped, retried: sum(ms, 'probemesh_aggregator_samples_retried_total') };
    }

    // ---- count: every result in PM_RESULTS vs probe_success samples in Prometheus ----
    log('reading PM_RESULTS back');
    const nc = await connect({ servers });
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(STREAM_RESULTS);
    // Per target one array of numbers (µs since `started`) × 16 + prober index: compact enough
    // for millions of results; equal neighbours after sorting are duplicates.
    const seen = new Map();
    const urlOf = new Map();
    const proberIdx = new Map(probers.map((p, i) => [p.id, i]));
    const baseUs = started * 1000;
    let results = 0;
    const byProber = {};
    // A plain pull consumer (no acks) read from the first message to the last sequence.
    const ci = await jsm.consumers.add(STREAM_RESULTS, { ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, inactive_threshold: 60e9, max_batch: 1000 });
    const consumer = await js.consumers.get(STREAM_RESULTS, ci.name);
    let lastSeq = 0;
    let emptyFetches = 0;
    while (lastSeq < info.state.last_seq) {
      const batchMsgs = await consumer.fetch({ max_messages: 100, expires: 5000 });
      let got = 0;
      for await (const m of batchMsgs) {
        got++;
        lastSeq = m.seq;
        const batch = probemesh.v1.ResultBatch.decode(m.data);
        for (const r of batch.results) {
          results++;
          const idx = proberIdx.get(r.prober);
          if (idx === undefined) throw new Error(`result from unknown prober ${JSON.stringify(r.prober)}`);
          let l = seen.get(r.targetId);
          if (!l) {
            seen.set(r.targetId, (l = []));
            urlOf.set(r.targetId, r.target);
          }
          l.push(Math.round(toNumber(r.startUnixNano) / 1e3 - baseUs) * 16 + idx);
        }
      }
      if (!got) {
        const c = await jsm.consumers.info(STREAM_RESULTS, ci.name);
        if (c.num_pending === 0 && c.num_ack_pending === 0) {
          log(`PM_RESULTS read up to sequence ${lastSeq} of ${info.state.last_seq}: nothing pending (interior messages missing?)`);
          break;
        }
        if (++emptyFetches > 10) throw new Error(`reading PM_RESULTS: no message after sequence ${lastSeq} of ${info.state.last_seq} (consumer pending ${c.num_pending})`);
      }
    }
    let unique = 0;
    for (const [id, l] of seen) {
      const sorted = Float64Array.from(l).sort();
      let n = 0;
      for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[n++] = sorted[i];
      const u = sorted.subarray(0, n);
      seen.set(id, u);
      unique += n;
      for (const v of u) {
        const p = probers[v % 16].id;
        byProber[p] = (byProber[p] ?? 0) + 1;
      }
    }
    const msOf = (v) => started + Math.floor(v / 16) / 1000;
    const proberOf = (v) => probers[v % 16].id;
    log(`stream: ${info.state.messages} messages (${(info.state.bytes / 2 ** 20).toFixed(1)} MiB, first_seq ${info.state.first_seq}, max_bytes ${info.config.max_bytes}), ${results} results (${unique} unique) from ${seen.size} targets`);
    if (info.state.first_seq !== 1) log(`WARNING: the stream discarded its first ${info.state.first_seq - 1} messages (limits): the count below covers only what it kept`);
    const endS = Date.now() / 1000;
    const rangeS = Math.ceil(endS - started / 1000 + 60);
    const stored = Number((await prom.query(`sum(count_over_time(probe_success{job="scale"}[${rangeS}s]))`, endS))[0]?.value[1] ?? 0);
    const storedByProber = Object.fromEntries((await prom.query(`sum by (prober) (count_over_time(probe_success{job="scale"}[${rangeS}s]))`, endS)).map((s) => [s.metric.prober, Number(s.value[1])]));
    log(`Prometheus: ${stored} probe_success samples; lost = ${unique - stored}`);
    // Per (target, prober): stream vs Prometheus, and the first mismatch in detail.
    const promCounts = new Map((await prom.query(`count_over_time(probe_success{job="scale"}[${rangeS}s])`, endS)).map((x) => [`${x.metric.instance}\n${x.metric.prober}`, Number(x.value[1])]));
    const streamCounts = new Map();
    for (const [id, l] of seen) for (const v of l) { const k = `${urlOf.get(id)}\n${proberOf(v)}`; streamCounts.set(k, (streamCounts.get(k) ?? 0) + 1); }
    const mismatched = [...new Set([...promCounts.keys(), ...streamCounts.keys()])].filter((k) => (promCounts.get(k) ?? 0) !== (streamCounts.get(k) ?? 0));
    if (mismatched.length) {
      const k = mismatched[0];
      const [url, pr] = k.split('\n');
      const id = [...urlOf].find(([, u]) => u === url)?.[0];
      const fromStream = [...(seen.get(id) ?? [])].filter((v) => proberOf(v) === pr).map((v) => Math.round(msOf(v)));
      const fromProm = ((await prom.queryMatrix(`probe_success{job="scale",instance="${url}",prober="${pr}"}[${rangeS}s]`, endS))[0]?.values ?? []).map((x) => Math.round(Number(x[0]) * 1000));
      const onlyProm = fromProm.filter((t) => !fromStream.some((u) => Math.abs(u - t) < 1));
      const onlyStream = fromStream.filter((t) => !fromProm.some((u) => Math.abs(u - t) < 1));
      log(`${mismatched.length} (target, prober) pairs differ; e.g. ${url} ${pr}: stream ${fromStream.length}, Prometheus ${fromProm.length}; only in Prometheus ${JSON.stringify(onlyProm.slice(0, 8))}; only in stream ${JSON.stringify(onlyStream.slice(0, 8))}`);
    }

    // ---- coverage: gaps between consecutive results of each target; the killed prober's targets ----
    const gapAll = [];
    const victimGaps = [];
    const measuredFrom = runStart;
    const measuredTo = runEnd;
    let inWindow = 0;
    for (const [, l] of seen) {
      let max = 0;
      let lastVictimBefore;
      let lastBefore;
      let nextOther;
      for (let i = 0; i < l.length; i++) {
        const ms = msOf(l[i]);
        if (ms >= measuredFrom && ms < measuredTo) inWindow++;
        if (i > 0 && ms >= measuredFrom && ms <= measuredTo) max = Math.max(max, ms - msOf(l[i - 1]));
        if (killMs !== undefined) {
          if (ms < killMs) {
            lastBefore = l[i];
            if (proberOf(l[i]) === victim.id) lastVictimBefore = ms;
          } else if (nextOther === undefined && proberOf(l[i]) !== victim.id) nextOther = ms;
        }
      }
      gapAll.push(max);
      if (killMs !== undefined && lastBefore !== undefined && proberOf(lastBefore) === victim.id) {
        victimGaps.push({ gap: nextOther !== undefined ? nextOther - lastVictimBefore : Infinity, fromKill: nextOther !== undefined ? nextOther - killMs : Infinity });
      }
    }
    const expected = Math.round(((measuredTo - measuredFrom) / INTERVAL_MS) * TARGETS);

    // ---- summaries ----
    const pSnaps = probers.filter((p) => p.first && p.last);
    let lag = [];
    for (const p of pSnaps) lag = addBuckets(lag, subBuckets(p.last.lag, p.first.lag));
    const series = (f) => samples.map((s) => f(s));
    const ts = series((s) => s.t);
    const backlog = series((s) => Object.values(s.aggregators).reduce((a, x) => a + x.pending, 0));
    const half = Math.floor(samples.length / 2);
    const mem = {};
    for (const n of named) {
      const xs = samples.map((s) => s.procs[n.name]?.rssMiB).filter((x) => x !== undefined);
      const tt = samples.filter((s) => s.procs[n.name]).map((s) => s.t);
      if (!xs.length) continue;
      mem[n.name] = { first: xs[0], last: xs.at(-1), max: Math.max(...xs), slopeMiBPerMin: slope(tt.slice(Math.floor(tt.length / 4)), xs.slice(Math.floor(xs.length / 4))) * 60, peakHwm: hwm[n.name] };
    }
    const probesTotal = pSnaps.reduce((a, p) => a + p.last.probes - p.first.probes, 0);
    const okTotal = pSnaps.reduce((a, p) => a + p.last.ok - p.first.ok, 0);
    const missedTotal = pSnaps.reduce((a, p) => a + p.last.missed - p.first.missed, 0);
    Object.assign(out, {
      duration_s: (runEnd - runStart) / 1000,
      results_per_s: inWindow / ((measuredTo - measuredFrom) / 1000),
      target_probes_per_s: (TARGETS * 1000) / INTERVAL_MS,
      success_ratio: probesTotal ? okTotal / probesTotal : 0,
      scheduler: { lag_p50_ms: histQuantile(lag, 0.5) * 1000, lag_p99_ms: histQuantile(lag, 0.99) * 1000, missed_slots: missedTotal, missed_ratio: missedTotal / Math.max(1, probesTotal + missedTotal) },
      coverage: { expected_results_in_window: expected, results_in_window: inWindow, ratio: inWindow / expected, max_gap_per_target_ms: { p50: q(gapAll, 0.5), p99: q(gapAll, 0.99), max: Math.max(...gapAll) } },
      kill: killMs === undefined ? null : { prober: victim.id, at_s: (killMs - runStart) / 1000, targets: victimGaps.length, from_kill_ms: { p50: q(victimGaps.map((g) => g.fromKill), 0.5), p99: q(victimGaps.map((g) => g.fromKill), 0.99), max: Math.max(...victimGaps.map((g) => g.fromKill)) }, gap_ms: { p50: q(victimGaps.map((g) => g.gap), 0.5), max: Math.max(...victimGaps.map((g) => g.gap)) } },
      backlog_messages: { max: Math.max(...backlog), last: backlog.at(-1), slope_second_half_per_min: slope(ts.slice(half), backlog.slice(half)) * 60 },
      // Remote storage lag of the aggregators that sent something since the previous sample
      // (one owning only a dead prober's subject sends nothing, and its gauge just ages).
      storage_lag_s: (() => {
        const lags = samples.map((s, i) => Math.max(0, ...Object.entries(s.aggregators).filter(([id, x]) => i > 0 && samples[i - 1].aggregators[id] && x.sent > samples[i - 1].aggregators[id].sent).map(([, x]) => x.storageLag)));
        return { p50: q(lags, 0.5), p99: q(lags, 0.99), max: Math.max(...lags) };
      })(),
      drain_after_stop_s: drainS,
      counts: { mismatched_target_prober_pairs: mismatched.length, stream_messages: info.state.messages, stream_bytes: info.state.bytes, stream_first_seq: info.state.first_seq, stream_max_bytes: info.config.max_bytes, results_in_stream: results, unique_results: unique, stored_in_prometheus: stored, lost: unique - stored, by_prober: byProber, stored_by_prober: storedByProber, aggregators: aggFinal, probers_dropped: probers.reduce((a, p) => a + (p.final?.dropped ?? p.last?.dropped ?? 0), 0) },
      cpu_cores: cpu,
      memory_mib: mem,
      timeline: samples.map((s) => ({ t: s.t, probers: s.probers, aggregators: s.aggregators, rss: Object.fromEntries(Object.entries(s.procs).map(([k, v]) => [k, Math.round(v.rssMiB)])) })),
    });
    await nc.close();
  } catch (err) {
    for (const n of named) if (n.proc.output) console.error(`--- ${n.name} (pid ${n.proc.pid}) exit ${JSON.stringify(n.proc.exitInfo?.())}:\n${n.proc.output().slice(-1500)}`);
    throw err;
  } finally {
    admin?.close();
    await procs.stopAll(5_000);
    await prom?.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
  report(out);
}

function report(o) {
  const f = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? '–' : Number(x).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  console.log(`\nscale ${o.label}: ${o.config.TARGETS} targets at ${o.config.INTERVAL_MS} ms, ${o.config.PROBERS} probers, ${o.config.AGGREGATORS} aggregators, ${f(o.duration_s)} s`);
  console.log(`results/s ${f(o.results_per_s)} of ${f(o.target_probes_per_s)} wanted; success ${f(o.success_ratio * 100, 2)} %; scheduler lag p50 ${f(o.scheduler.lag_p50_ms, 1)} ms p99 ${f(o.scheduler.lag_p99_ms, 1)} ms; missed slots ${f(o.scheduler.missed_slots)} (${f(o.scheduler.missed_ratio * 100, 2)} %)`);
  console.log(`coverage ${f(o.coverage.ratio * 100, 2)} % of ${f(o.coverage.expected_results_in_window)} expected results; per-target max gap p50 ${f(o.coverage.max_gap_per_target_ms.p50)} ms p99 ${f(o.coverage.max_gap_per_target_ms.p99)} ms`);
  if (o.kill) console.log(`kill -9 ${o.kill.prober} at ${f(o.kill.at_s)} s: ${o.kill.targets} targets, first result from another prober after p50 ${f(o.kill.from_kill_ms.p50)} ms / max ${f(o.kill.from_kill_ms.max)} ms; gap p50 ${f(o.kill.gap_ms.p50)} max ${f(o.kill.gap_ms.max)} ms`);
  console.log(`backlog (JetStream pending) max ${f(o.backlog_messages.max)} msgs, last ${f(o.backlog_messages.last)}, slope in 2nd half ${f(o.backlog_messages.slope_second_half_per_min, 1)} msgs/min; remote storage lag (sending aggregators) p50 ${f(o.storage_lag_s.p50, 1)} s p99 ${f(o.storage_lag_s.p99, 1)} s max ${f(o.storage_lag_s.max, 1)} s; drain after stop ${f(o.drain_after_stop_s)} s`);
  const c = o.counts;
  console.log(`results in PM_RESULTS ${f(c.unique_results)} (raw ${f(c.results_in_stream)}), stored in Prometheus ${f(c.stored_in_prometheus)}: LOST ${f(c.lost)}; aggregator drops ${f(Object.values(c.aggregators).reduce((a, x) => a + x.dropped, 0))} ${JSON.stringify(Object.values(c.aggregators).map((x) => x.dropped_by_reason))}; prober drops ${f(c.probers_dropped)}`);
  console.log('process        CPU cores   RSS first → last MiB (max, slope MiB/min after the first quarter)');
  for (const [name, cpu] of Object.entries(o.cpu_cores)) {
    const m = o.memory_mib[name];
    console.log(`${name.padEnd(14)} ${f(cpu, 2).padStart(9)}   ${m ? `${f(m.first)} → ${f(m.last)} (${f(m.max)}, ${f(m.slopeMiBPerMin, 2)})` : '–'}`);
  }
  const file = join(root, 'bench/results/scale.json');
  const all = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  all[o.label] = o;
  writeFileSync(file, JSON.stringify(all, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
