// Pipeline throughput: one aggregator (a child process: `probemesh aggregator`) draining a
// 5-minute backlog of ResultBatches from JetStream (real nats-server) into
//   (a) a null remote_write sink (the aggregator alone: pull, decode, series, encode, snappy, HTTP)
//   (b) a real Prometheus 2.42 (the whole write path: NATS → aggregator → Prometheus TSDB),
// alternating (a)/(b) for several rounds, plus (c) a live run: a publisher at a steady rate
// while the aggregator writes to Prometheus (end-to-end lag), and (d) the WriteRequest encoder
// alone: hand-rolled vs protobufjs. CPU-seconds and peak RSS of the aggregator from /proc.
// Usage: npm run bench -- pipeline   (env PM_BENCH_ROUNDS=3, PM_BENCH_RATE=1000 results/s of backlog)
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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

const ROUNDS = Number(process.env.PM_BENCH_ROUNDS ?? 3);
const RATE = Number(process.env.PM_BENCH_RATE ?? 1000); // results/s the backlog represents
const PROBERS = 20;
const BACKLOG_S = 300;
const PER_BATCH = RATE / PROBERS; // one batch per prober per second
const SAMPLES_PER_RESULT = 4 + 14 + 1; // success, duration, status, version + histogram + jitter
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
const prom = await h.startPrometheus({ procs, config: 'global:\n  scrape_interval: 15s\nstorage:\n  tsdb:\n    out_of_order_time_window: 30m\n' });
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
const out = { rate: RATE, backlogSeconds: BACKLOG_S, probers: PROBERS, samplesPerResult: SAMPLES_PER_RESULT, rounds: [], live: null, encoder: null };

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

async function startAggregatorProc(id, url, port) {
  const file = join(dir, `${id}.yml`);
  writeFileSync(
    file,
    [
      `id: ${id}`,
      `job: bench`,
      `nats: { servers: ["${nats.url}"] }`,
      `http: { listen: "127.0.0.1:${port}" }`,
      `consumer: { durable: ${id}, fetch_batch: 256 }`,
      'ownership: { discovery_interval: 1s }',
      `remote_write: [{ url: "${url}", max_samples_per_send: 5000, shards: 4, max_buffered_samples: 200000 }]`,
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
  const run = `r${round}${side}`;
  const results = await publishBacklog(run, BACKLOG_S, RATE);
  const expected = results * SAMPLES_PER_RESULT - PROBERS * (RATE / PROBERS); // no jitter on each series' first result
  const port = await h.freePort();
  const promCpu0 = procStat(prom.pid).cpu;
  const t0 = performance.now();
  const proc = await startAggregatorProc(`agg-${run}`, side === 'sink' ? sinkUrl : prom.writeUrl, port);
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
  const r = { side, round, results, samples: sent, drainS, startToDoneS: totalS, samplesPerS: sent / drainS, cpuS: peak.cpu, samplesPerCpuS: sent / peak.cpu, peakRssMiB: peak.hwmMiB, meanRequestS: reqS, prometheusCpuS: procStat(prom.pid).cpu - promCpu0, retriedSamples: metricValue(lastText, 'probemesh_aggregator_samples_retried_total'), failedAttempts: lastText.split('\n').filter((l) => l.startsWith('probemesh_aggregator_remote_write_requests_total') && !/status="2\d\d"/.test(l)).join('; ') };
  if (side === 'prometheus') {
    const q = await prom.query(`sum(count_over_time(probe_success{run="${run}"}[1h]))`);
    r.storedResults = q.length ? Number(q[0].value[1]) : 0;
  }
  console.log(`  ${side.padEnd(10)} round ${round}: ${sent} samples in ${drainS.toFixed(1)} s → ${Math.round(r.samplesPerS)} samples/s, ${peak.cpu.toFixed(1)} CPU-s, peak RSS ${peak.hwmMiB.toFixed(0)} MiB, mean request ${(reqS * 1000).toFixed(0)} ms, Prometheus ${r.prometheusCpuS.toFixed(1)} CPU-s, retried ${r.retriedSamples}${r.failedAttempts ? ` (${r.failedAttempts})` : ''}${r.storedResults !== undefined ? `, stored ${r.storedResults}/${results} results` : ''}`);
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
  return res;
}

try {
  console.log(`pipeline: ${PROBERS} probers, backlog ${BACKLOG_S} s at ${RATE} results/s (${RATE * BACKLOG_S} results, ~${RATE * BACKLOG_S * SAMPLES_PER_RESULT} samples)`);
  out.encoder = encoderBench();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const side of round % 2 ? ['sink', 'prometheus'] : ['prometheus', 'sink']) out.rounds.push(await drainRound(side, round));
  }
  out.live = await liveRun(Number(process.env.PM_BENCH_LIVE_S ?? 30), Number(process.env.PM_BENCH_LIVE_RATE ?? 2000));
  const rows = ['sink', 'prometheus'].map((side) => {
    const rs = out.rounds.filter((r) => r.side === side);
    return {
      side,
      samplesPerS: median(rs.map((r) => r.samplesPerS)),
      spread: spread(rs.map((r) => r.samplesPerS)),
      drainS: median(rs.map((r) => r.drainS)),
      samplesPerCpuS: median(rs.map((r) => r.samplesPerCpuS)),
      peakRssMiB: Math.max(...rs.map((r) => r.peakRssMiB)),
    };
  });
  out.summary = rows;
  console.log('\n| into | samples/s (median, spread) | 5-min backlog drained in | samples per aggregator CPU-s | peak RSS |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.side} | ${Math.round(r.samplesPerS)} (${r.spread}) | ${r.drainS.toFixed(1)} s | ${Math.round(r.samplesPerCpuS)} | ${r.peakRssMiB.toFixed(0)} MiB |`);
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results/pipeline.json'), JSON.stringify(out, null, 2));
} finally {
  await nc.close();
  sink.close();
  await prom.stop();
  await nats.stop();
  await h.removeDir(dir);
}
