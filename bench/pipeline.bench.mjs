// Pipeline throughput: one aggregator (a child process: `probemesh aggregator`) draining a
// 5-minute backlog of ResultBatches from JetStream (real nats-server) into
//   (a) a null remote_write sink (the aggregator alone: pull, decode, series, encode, snappy, HTTP)
//   (b) a real Prometheus 2.42 (the whole write path: NATS → aggregator → Prometheus TSDB),
// alternating (a)/(b) for several rounds (classic histograms only, and with native histograms
// too), plus (c) a live run: a publisher at a steady rate while the aggregator writes to
// Prometheus (end-to-end lag), (d) the WriteRequest encoder alone: hand-rolled vs protobufjs,
// and (e) end to end with real probers: prober processes (the CLI, eBPF off) probing a local
// HTTP target server (its own process) at 1 s, a coordinator placing the targets, nats-server,
// one aggregator process, Prometheus; results/s and samples/s end to end, CPU of every process,
// remote storage lag, and every result in the stream counted back in Prometheus.
// CPU-seconds and peak RSS from /proc.
// Usage: npm run bench -- pipeline
//   env PM_BENCH_PARTS=encoder,backlog,live,e2e (default all; results of parts not run are kept
//   from the previous bench/results/pipeline.json), PM_BENCH_ROUNDS=3, PM_BENCH_RATE=1000 results/s
//   of backlog, PM_BENCH_E2E_TARGETS=1000,2000,3000 (targets at 1 s = offered results/s),
//   PM_BENCH_E2E_PROBERS=2, PM_BENCH_E2E_ROUNDS=2, PM_BENCH_E2E_WINDOW_S=30
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const h = require(join(root, 'test/dist/harness/index.js'));
const { makeBatch, metricValue } = require(join(root, 'test/dist/pipeline/publisher.js'));
const agg = require('@probemesh/aggregator');
const { prometheus } = require('@probemesh/proto');
const { connect } = require('nats');

const PARTS = new Set((process.env.PM_BENCH_PARTS ?? 'encoder,backlog,live,e2e').split(','));
const ROUNDS = Number(process.env.PM_BENCH_ROUNDS ?? 3);
const RATE = Number(process.env.PM_BENCH_RATE ?? 1000); // results/s the backlog represents
const PROBERS = 20;
const BACKLOG_S = 300;
const PER_BATCH = RATE / PROBERS; // one batch per prober per second
const SAMPLES_PER_RESULT = 4 + 14 + 1; // success, duration, status, version + classic histogram + jitter
const sideNative = (side) => side.endsWith('+nh'); // "+nh" sides also write a native histogram sample per result
const CLI = join(root, 'services/cli/dist/main.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TICK = 100; // USER_HZ

function procStat(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const cpu = (Number(f[11]) + Number(f[12])) / TICK;
  const hwm = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;
  return { cpu, hwmMiB: hwm };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;

const procs = new h.Procs();
const nats = await h.startNats({ procs });
const prom = await h.startPrometheus({ procs, features: ['native-histograms'], config: 'global:\n  scrape_interval: 15s\nstorage:\n  tsdb:\n    out_of_order_time_window: 30m\n' });
const sink = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(204).end());
});
await new Promise((r) => sink.listen(0, '127.0.0.1', r));
const sinkUrl = `http://127.0.0.1:${sink.address().port}/api/v1/write`;
const nc = await connect({ servers: nats.url });
const js = nc.jetstream();
const jsm = await nc.jetstreamManager();
await require('@probemesh/common').ensureResultsStream(jsm, { max_age: 86_400_000, max_bytes: 4 * 1024 ** 3, replicas: 1 });
const dir = await h.tempDir('bench-pipeline');
const resultsFile = join(root, 'bench/results/pipeline.json');
const previous = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : {};
const out = { ...previous, rate: RATE, backlogSeconds: BACKLOG_S, probers: PROBERS, samplesPerResult: SAMPLES_PER_RESULT };

async function publishBacklog(run, seconds, rate) {
  const now = Date.now();
  const per = rate / PROBERS;
  const pending = [];
  for (let s = 0; s < seconds; s++) {
    for (let p = 0; p < PROBERS; p++) {
      const prober = `bp${p}`;
      pending.push(js.publish(`pm.results.${prober}`, makeBatch(prober, s + 1, now - (seconds - s) * 1000, per, run), { msgID: `${run}-${prober}-${s}` }));
      if (pending.length >= 500) await Promise.all(pending.splice(0));
    }
  }
  await Promise.all(pending);
  return seconds * rate;
}

async function startAggregatorProc(id, url, port, { native = 'never', natsUrl = nats.url, job = 'bench' } = {}) {
  const file = join(dir, `${id}.yml`);
  writeFileSync(
    file,
    [
      `id: ${id}`,
      `job: ${job}`,
      `nats: { servers: ["${natsUrl}"] }`,
      `http: { listen: "127.0.0.1:${port}" }`,
      `consumer: { durable: ${id}, fetch_batch: 256 }`,
      'ownership: { discovery_interval: 1s }',
      `remote_write: [{ url: "${url}", max_samples_per_send: 5000, shards: 4, max_buffered_samples: 200000, native_histograms: ${native} }]`,
      'log: { level: warn }',
      '',
    ].join('\n'),
  );
  const proc = h.spawnChild(process.execPath, [CLI, 'aggregator', '--config', file], { name: id, procs });
  return proc;
}

async function metrics(port) {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

async function drainRound(side, round) {
  await jsm.streams.purge('PM_RESULTS');
  const run = `r${round}${side.replace('+nh', 'nh')}`;
  const results = await publishBacklog(run, BACKLOG_S, RATE);
  const perResult = SAMPLES_PER_RESULT + (sideNative(side) ? 1 : 0);
  const expected = results * perResult - PROBERS * (RATE / PROBERS); // no jitter on each series' first result
  const port = await h.freePort();
  const promCpu0 = procStat(prom.pid).cpu;
  const t0 = performance.now();
  const proc = await startAggregatorProc(`agg-${run}`, side.startsWith('sink') ? sinkUrl : prom.writeUrl, port, { native: sideNative(side) ? 'always' : 'never' });
  let lastText = '';
  let sent = 0;
  let tFirst;
  let peak = { cpu: 0, hwmMiB: 0 };
  for (;;) {
    await sleep(250);
    try {
      const t = await metrics(port);
      lastText = t;
      sent = metricValue(t, 'probemesh_aggregator_samples_sent_total');
      if (sent > 0 && tFirst === undefined) tFirst = performance.now();
      peak = procStat(proc.pid);
      if (sent >= expected) break;
    } catch {
      if (proc.exitInfo()) throw new Error(`aggregator exited: ${proc.output()}`);
    }
    if (performance.now() - t0 > 600_000) throw new Error(`round ${run} did not finish: sent ${sent}/${expected}`);
  }
  const t1 = performance.now();
  const drainS = (t1 - tFirst) / 1000;
  const totalS = (t1 - t0) / 1000;
  await proc.stop(10_000);
  const reqS = metricValue(lastText, 'probemesh_aggregator_send_duration_seconds_sum') / metricValue(lastText, 'probemesh_aggregator_send_duration_seconds_count');
  const r = { side, round, results, samplesPerResult: perResult, droppedSamples: metricValue(lastText, 'probemesh_aggregator_samples_dropped_total'), samples: sent, drainS, startToDoneS: totalS, samplesPerS: sent / drainS, cpuS: peak.cpu, samplesPerCpuS: sent / peak.cpu, peakRssMiB: peak.hwmMiB, meanRequestS: reqS, prometheusCpuS: procStat(prom.pid).cpu - promCpu0, retriedSamples: metricValue(lastText, 'probemesh_aggregator_samples_retried_total'), failedAttempts: lastText.split('\n').filter((l) => l.startsWith('probemesh_aggregator_remote_write_requests_total') && !/status="2\d\d"/.test(l)).join('; ') };
  if (side.startsWith('prometheus')) {
    const q = await prom.query(`sum(count_over_time(probe_success{run="${run}"}[1h]))`);
    r.storedResults = q.length ? Number(q[0].value[1]) : 0;
    if (sideNative(side)) {
      const n = await prom.query(`sum(count_over_time(probemesh_probe_duration_seconds{run="${run}"}[1h]))`);
      r.storedNativeHistograms = n.length ? Number(n[0].value[1]) : 0;
    }
  }
  console.log(`  ${side.padEnd(13)} round ${round}: ${sent} samples in ${drainS.toFixed(1)} s → ${Math.round(r.samplesPerS)} samples/s, ${peak.cpu.toFixed(1)} CPU-s, peak RSS ${peak.hwmMiB.toFixed(0)} MiB, mean request ${(reqS * 1000).toFixed(0)} ms, Prometheus ${r.prometheusCpuS.toFixed(1)} CPU-s, retried ${r.retriedSamples}${r.failedAttempts ? ` (${r.failedAttempts})` : ''}${r.storedResults !== undefined ? `, stored ${r.storedResults}/${results} results` : ''}${r.storedNativeHistograms !== undefined ? `, ${r.storedNativeHistograms}/${results} native histograms` : ''}`);
  return r;
}

async function liveRun(seconds, rate) {
  await jsm.streams.purge('PM_RESULTS');
  const port = await h.freePort();
  const proc = await startAggregatorProc('agg-live', prom.writeUrl, port);
  await sleep(2000);
  const run = 'live';
  let seq = 0;
  const lags = [];
  let maxRss = 0;
  const t0 = performance.now();
  const cpu0 = procStat(proc.pid).cpu;
  while (performance.now() - t0 < seconds * 1000) {
    seq++;
    const now = Date.now();
    await Promise.all(Array.from({ length: PROBERS }, (_, p) => js.publish(`pm.results.lp${p}`, makeBatch(`lp${p}`, seq, now, rate / PROBERS, run), { msgID: `live-${p}-${seq}` })));
    if (seq % 5 === 0) {
      const t = await metrics(port);
      lags.push(metricValue(t, 'probemesh_aggregator_remote_storage_lag_seconds'));
      maxRss = Math.max(maxRss, procStat(proc.pid).hwmMiB);
    }
    await sleep(Math.max(0, seq * 1000 - (performance.now() - t0)));
  }
  const cpu = procStat(proc.pid).cpu - cpu0;
  const q = await h.waitFor(async () => {
    const r = await prom.query(`sum(count_over_time(probe_success{run="${run}"}[1h]))`);
    const n = r.length ? Number(r[0].value[1]) : 0;
    return n === seq * rate ? n : undefined;
  }, { timeoutMs: 60_000, intervalMs: 500, what: 'live results stored' });
  await proc.stop(10_000);
  const res = { seconds, resultsPerS: rate, samplesPerS: rate * SAMPLES_PER_RESULT, stored: q, published: seq * rate, lagP50S: median(lags), lagMaxS: Math.max(...lags), cpuPerS: cpu / seconds, peakRssMiB: maxRss };
  console.log(`  live: ${rate} results/s (${rate * SAMPLES_PER_RESULT} samples/s) for ${seconds} s, stored ${q}/${seq * rate}; remote storage lag p50 ${res.lagP50S.toFixed(2)} s, max ${res.lagMaxS.toFixed(2)} s; aggregator ${res.cpuPerS.toFixed(2)} CPU-s/s, peak RSS ${maxRss.toFixed(0)} MiB`);
  return res;
}

// (e) End to end with real probers. Each step gets its own nats-server and coordinator (so
// targets and stream start empty); Prometheus is shared (a `job` label per step).
const E2E_PROBERS = Number(process.env.PM_BENCH_E2E_PROBERS ?? 2);
const E2E_WINDOW_S = Number(process.env.PM_BENCH_E2E_WINDOW_S ?? 30);
const E2E_WARMUP_S = 10;

function cpuOf(pid) {
  try {
    return procStat(pid).cpu;
  } catch {
    return NaN;
  }
}

async function textOf(url) {
  return (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
}

/** Results in every ResultBatch of the PM_RESULTS stream (what the probers published). */
async function streamResults(ncx) {
  const { probemesh } = require('@probemesh/proto');
  const jsmx = await ncx.jetstreamManager();
  const last = (await jsmx.streams.info('PM_RESULTS')).state.last_seq;
  if (last === 0) return { results: 0, messages: 0 };
  const oc = await ncx.jetstream().consumers.get('PM_RESULTS');
  const iter = await oc.consume({ max_messages: 1000 });
  let results = 0;
  let messages = 0;
  for await (const m of iter) {
    results += probemesh.v1.ResultBatch.decode(m.data).results.length;
    messages++;
    if (m.seq >= last) break;
  }
  await iter.close?.();
  return { results, messages };
}

async function e2eStep(targets, round) {
  const { loadConfig, silentLogger } = require('@probemesh/common');
  const { startCoordinator, coordinatorConfigSchema, createAdminClient } = require('@probemesh/coordinator');
  const job = `e2e-${targets}-${round}`;
  const natsE = await h.startNats({ procs });
  const ncE = await connect({ servers: natsE.url });
  const started = [];
  const targetPort = await h.freePort();
  const target = h.spawnChild(process.execPath, ['-e', `require('http').createServer((q, r) => r.end('ok')).listen(${targetPort}, '127.0.0.1')`], { name: 'target', procs });
  started.push(target);
  const coordinator = await startCoordinator(loadConfig(coordinatorConfigSchema, { text: `nats:\n  servers: ["${natsE.url}"]\ngrpc:\n  listen: 127.0.0.1:0\nhttp:\n  listen: 127.0.0.1:0\nlog:\n  level: warn\n`, env: {} }), { log: silentLogger() });
  const admin = createAdminClient(coordinator.grpcAddress);
  const aggPort = await h.freePort();
  const aggUrl = `http://127.0.0.1:${aggPort}`;
  try {
    const aggProc = await startAggregatorProc(`agg-${job}`, prom.writeUrl, aggPort, { native: 'never', natsUrl: natsE.url, job });
    started.push(aggProc);
    await admin.importTargets({ format: 'list', content: Array.from({ length: targets }, (_, i) => `http://127.0.0.1:${targetPort}/t/${i}`).join('\n'), intervalMs: 1000, timeoutMs: 800 });
    const probers = [];
    for (let i = 0; i < E2E_PROBERS; i++) {
      const port = await h.freePort();
      const cfg = join(dir, `${job}-p${i}.yml`);
      writeFileSync(cfg, `id: ${job}-p${i}\nzone: z${i}\nnats:\n  servers: ["${natsE.url}"]\nhttp:\n  listen: 127.0.0.1:${port}\nebpf:\n  enabled: false\nlog:\n  level: warn\n`);
      const proc = h.spawnChild(process.execPath, [CLI, 'prober', '--config', cfg], { name: `prober${i}`, procs });
      probers.push({ proc, url: `http://127.0.0.1:${port}` });
      started.push(proc);
    }
    const sumOver = async (name, re) => {
      let n = 0;
      for (const p of probers) n += metricValue(await textOf(p.url), name, re);
      return n;
    };
    await h.waitFor(async () => ((await sumOver('probemesh_prober_targets').catch(() => 0)) === targets ? true : undefined), { timeoutMs: 60_000, intervalMs: 500, what: `${targets} targets placed on the probers` });
    await sleep(E2E_WARMUP_S * 1000);
    const pids = { aggregator: aggProc.pid, probers: probers.map((p) => p.proc.pid), target: target.pid, nats: natsE.pid, prometheus: prom.pid };
    const cpu = () => ({ aggregator: cpuOf(pids.aggregator), probers: pids.probers.reduce((a, p) => a + cpuOf(p), 0), target: cpuOf(pids.target), nats: cpuOf(pids.nats), prometheus: cpuOf(pids.prometheus) });
    const counters = async () => {
      const a = await textOf(aggUrl);
      return { published: await sumOver('probemesh_prober_results_published_total'), probes: await sumOver('probemesh_prober_probes_total'), late: await sumOver('probemesh_prober_scheduler_late_total'), missed: await sumOver('probemesh_prober_scheduler_missed_total'), received: metricValue(a, 'probemesh_aggregator_results_received_total'), sent: metricValue(a, 'probemesh_aggregator_samples_sent_total') };
    };
    const c0 = cpu();
    const k0 = await counters();
    const t0 = performance.now();
    const lags = [];
    while (performance.now() - t0 < E2E_WINDOW_S * 1000) {
      await sleep(1000);
      lags.push(metricValue(await textOf(aggUrl), 'probemesh_aggregator_remote_storage_lag_seconds'));
    }
    const secs = (performance.now() - t0) / 1000;
    const k1 = await counters();
    const c1 = cpu();
    const rssAgg = procStat(pids.aggregator).hwmMiB;
    const cpuPerS = Object.fromEntries(Object.keys(c0).map((k) => [k, (c1[k] - c0[k]) / secs]));
    // Stop the probers (SIGTERM: they flush what they hold), then count everything back.
    await Promise.all(probers.map((p) => p.proc.stop(15_000)));
    const stream = await streamResults(ncE);
    const stored = await h.waitFor(
      async () => {
        const q = await prom.query(`sum(count_over_time(probe_success{job="${job}"}[1h]))`);
        const n = q.length ? Number(q[0].value[1]) : 0;
        return n === stream.results ? n : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000, what: `all ${stream.results} published results of ${job} in Prometheus` },
    ).catch(async () => {
      const q = await prom.query(`sum(count_over_time(probe_success{job="${job}"}[1h]))`);
      return q.length ? Number(q[0].value[1]) : 0;
    });
    const aFinal = await textOf(aggUrl);
    const r = {
      targets,
      round,
      probers: E2E_PROBERS,
      windowS: secs,
      resultsPerS: (k1.published - k0.published) / secs,
      probesPerS: (k1.probes - k0.probes) / secs,
      samplesPerS: (k1.sent - k0.sent) / secs,
      resultsReceivedPerS: (k1.received - k0.received) / secs,
      lateProbes: k1.late - k0.late,
      missedSlots: k1.missed - k0.missed,
      cpuPerS,
      aggregatorSamplesPerCpuS: (k1.sent - k0.sent) / secs / cpuPerS.aggregator,
      proberProbesPerCpuS: (k1.probes - k0.probes) / secs / cpuPerS.probers,
      aggregatorPeakRssMiB: rssAgg,
      lagP50S: median(lags),
      lagMaxS: Math.max(...lags),
      streamResults: stream.results,
      streamMessages: stream.messages,
      storedResults: stored,
      aggregatorResultsReceived: metricValue(aFinal, 'probemesh_aggregator_results_received_total'),
      droppedSamples: metricValue(aFinal, 'probemesh_aggregator_samples_dropped_total'),
    };
    const total = Object.values(cpuPerS).reduce((a, b) => a + b, 0);
    console.log(
      `  e2e ${targets} targets (round ${round}): ${Math.round(r.resultsPerS)} results/s (${Math.round(r.probesPerS)} probes/s), ${Math.round(r.samplesPerS)} samples/s into Prometheus; lag p50 ${r.lagP50S.toFixed(2)} s max ${r.lagMaxS.toFixed(2)} s; ` +
        `CPU-s/s aggregator ${cpuPerS.aggregator.toFixed(2)}, probers ${cpuPerS.probers.toFixed(2)}, target ${cpuPerS.target.toFixed(2)}, nats ${cpuPerS.nats.toFixed(2)}, prometheus ${cpuPerS.prometheus.toFixed(2)} (total ${total.toFixed(2)} of 2); ` +
        `late ${r.lateProbes}, missed ${r.missedSlots}; stored ${stored}/${stream.results} published results`,
    );
    return r;
  } finally {
    for (const p of started.reverse()) await p.stop(15_000).catch(() => undefined);
    admin.close?.();
    await coordinator.stop();
    await ncE.close();
    await natsE.stop();
  }
}

function encoderBench() {
  // 2000 series × 1 sample (a typical request): hand-rolled vs protobufjs, + snappy.
  const model = new agg.SeriesModel({ job: 'bench', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], jitterWindow: 30, maxSeries: 1e6 });
  const { probemesh } = require('@probemesh/proto');
  const samples = [];
  model.convert(probemesh.v1.ResultBatch.decode(makeBatch('enc', 1, Date.now(), 105, 'enc')), { labels: {}, samples: {} }, samples);
  const batch = samples.slice(0, 2000).map((x) => ({ s: x.s, v: x.v, t: x.t, stale: false, owner: null }));
  const { groups } = agg.groupSamples(batch);
  const series = [...groups].map(([s, g]) => ({ labels: s.labels, samples: g.map((x) => ({ value: x.v, timestampMs: x.t })) }));
  const time = (fn, n) => {
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn();
    const d = process.cpuUsage(t0);
    return (d.user + d.system) / 1e6 / n;
  };
  const res = { samples: batch.length, rounds: [] };
  for (let r = 0; r < 5; r++) {
    const hand = time(() => agg.encodeGrouped(agg.groupSamples(batch).groups), 200);
    const pbjs = time(() => prometheus.WriteRequest.encode(agg.toWriteRequest(series)).finish(), 200);
    const snap = time(() => agg.snappyCompress(agg.encodeGrouped(groups)), 200);
    res.rounds.push({ handMs: hand * 1000, protobufjsMs: pbjs * 1000, snappyMs: snap * 1000 - hand * 1000 });
  }
  const same = Buffer.compare(agg.encodeGrouped(groups), Buffer.from(prometheus.WriteRequest.encode(agg.toWriteRequest(series)).finish())) === 0;
  res.identicalBytes = same;
  const hm = median(res.rounds.map((r) => r.handMs));
  const pm = median(res.rounds.map((r) => r.protobufjsMs));
  const sm = median(res.rounds.map((r) => r.snappyMs));
  res.handSamplesPerCpuS = batch.length / (hm / 1000);
  res.protobufjsSamplesPerCpuS = batch.length / (pm / 1000);
  console.log(`  encoder (${batch.length} samples): hand-rolled ${hm.toFixed(2)} ms, protobufjs ${pm.toFixed(2)} ms (${(pm / hm).toFixed(1)}×), snappy ${sm.toFixed(2)} ms; identical bytes: ${same}`);
  // A native histogram sample: observe + snapshot + encode, for a latency series with ~30 populated buckets.
  const st = new agg.NativeHistogramState(3, 2.938735877055719e-39, 160);
  for (let i = 0; i < 1000; i++) st.observe(0.02 * Math.exp((i % 97) / 60));
  const nh = [];
  for (let r = 0; r < 5; r++) nh.push(time(() => agg.encodeHistogram((st.observe(0.03), st.snapshot())), 20_000) * 1e6);
  res.nativeHistogram = { buckets: st.bucketCount, usPerSample: median(nh), bytes: agg.encodeHistogram(st.snapshot()).body.length };
  console.log(`  native histogram sample (${st.bucketCount} buckets): observe+snapshot+encode ${median(nh).toFixed(2)} µs, ${res.nativeHistogram.bytes} bytes`);
  return res;
}

try {
  console.log(`pipeline: parts ${[...PARTS].join(', ')}; ${PROBERS} probers, backlog ${BACKLOG_S} s at ${RATE} results/s (${RATE * BACKLOG_S} results, ~${RATE * BACKLOG_S * SAMPLES_PER_RESULT} samples)`);
  if (PARTS.has('encoder')) out.encoder = encoderBench();
  if (PARTS.has('backlog')) {
    const sides = (process.env.PM_BENCH_BACKLOG_SIDES ?? 'sink,prometheus,sink+nh,prometheus+nh').split(',');
    out.rounds = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const side of round % 2 ? sides : [...sides].reverse()) out.rounds.push(await drainRound(side, round));
    }
    const rows = sides.map((side) => {
      const rs = out.rounds.filter((r) => r.side === side);
      return {
        side,
        samplesPerS: median(rs.map((r) => r.samplesPerS)),
        spread: spread(rs.map((r) => r.samplesPerS)),
        resultsPerS: median(rs.map((r) => r.samplesPerS / r.samplesPerResult)),
        drainS: median(rs.map((r) => r.drainS)),
        samplesPerCpuS: median(rs.map((r) => r.samplesPerCpuS)),
        peakRssMiB: Math.max(...rs.map((r) => r.peakRssMiB)),
      };
    });
    out.summary = rows;
    console.log('\n| into | samples/s (median, spread) | results/s | 5-min backlog drained in | samples per aggregator CPU-s | peak RSS |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const r of rows) console.log(`| ${r.side} | ${Math.round(r.samplesPerS)} (${r.spread}) | ${Math.round(r.resultsPerS)} | ${r.drainS.toFixed(1)} s | ${Math.round(r.samplesPerCpuS)} | ${r.peakRssMiB.toFixed(0)} MiB |`);
  }
  if (PARTS.has('live')) out.live = await liveRun(Number(process.env.PM_BENCH_LIVE_S ?? 30), Number(process.env.PM_BENCH_LIVE_RATE ?? 2000));
  if (PARTS.has('e2e')) {
    const steps = (process.env.PM_BENCH_E2E_TARGETS ?? '1000,2000,3000').split(',').map(Number);
    const rounds = Number(process.env.PM_BENCH_E2E_ROUNDS ?? 2);
    out.e2e = { probers: E2E_PROBERS, windowS: E2E_WINDOW_S, steps: [] };
    for (let round = 1; round <= rounds; round++) {
      for (const t of round % 2 ? steps : [...steps].reverse()) out.e2e.steps.push(await e2eStep(t, round));
    }
    const rows = steps.map((t) => {
      const rs = out.e2e.steps.filter((r) => r.targets === t);
      const m = (f) => median(rs.map(f));
      return { targets: t, resultsPerS: m((r) => r.resultsPerS), resultsSpread: spread(rs.map((r) => r.resultsPerS)), samplesPerS: m((r) => r.samplesPerS), aggregatorCpu: m((r) => r.cpuPerS.aggregator), proberCpu: m((r) => r.cpuPerS.probers), otherCpu: m((r) => r.cpuPerS.target + r.cpuPerS.nats + r.cpuPerS.prometheus), lagP50S: m((r) => r.lagP50S), lagMaxS: Math.max(...rs.map((r) => r.lagMaxS)), stored: rs.map((r) => `${r.storedResults}/${r.streamResults}`).join(', '), late: rs.reduce((a, r) => a + r.lateProbes, 0), missed: rs.reduce((a, r) => a + r.missedSlots, 0) };
    });
    out.e2e.summary = rows;
    console.log('\n| targets at 1 s | results/s (median, spread) | samples/s | aggregator CPU-s/s | probers CPU-s/s | target+nats+Prometheus CPU-s/s | lag p50 / max | late / missed probes | stored / published |');
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const r of rows) console.log(`| ${r.targets} | ${Math.round(r.resultsPerS)} (${r.resultsSpread}) | ${Math.round(r.samplesPerS)} | ${r.aggregatorCpu.toFixed(2)} | ${r.proberCpu.toFixed(2)} | ${r.otherCpu.toFixed(2)} | ${r.lagP50S.toFixed(2)} / ${r.lagMaxS.toFixed(2)} s | ${r.late} / ${r.missed} | ${r.stored} |`);
  }
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(resultsFile, JSON.stringify(out, null, 2));
} finally {
  await nc.close();
  sink.close();
  await prom.stop();
  await nats.stop();
  await h.removeDir(dir);
}
