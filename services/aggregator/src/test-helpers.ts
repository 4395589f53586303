/** Helpers shared by the aggregator's tests against real nats-server / Prometheus. */
import { findBinary } from '@probemesh/testkit';

function installed(name: string): boolean {
  try {
    return Boolean(findBinary(name, name));
  } catch {
    return false;
  }
}

/** `describe` skip option: the reason when prometheus or nats-server is missing, else false. */
export const skipWithoutServers: string | false =
  !installed('prometheus') || !installed('nats-server') ? 'needs prometheus and nats-server (Debian packages; npm test installs them as root)' : false;

/** Sums one metric (over label sets matching `labelRe`) in a /metrics text. */
export function metricValue(text: string, name: string, labelRe = /.*/): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && labelRe.test(m[2] ?? '')) sum += Number(m[3]);
  }
  return sum;
}
