/**
 * A private three-namespace network for ICMP tests (root only):
 *
 *   A 10.203.0.1 ──(MTU 1500)── 10.203.0.2 B 10.204.0.1 ──(MTU 1400)── 10.204.0.2 C
 *
 * B forwards; for 10.98.0.0/24 it has an `unreachable` route (it answers ICMP host
 * unreachable) and 10.97.0.0/24 is blackholed (silence → timeouts). From A, C is two
 * hops away behind a 1400-byte link: a DF 1472-byte ping gets "fragmentation needed"
 * from B; from C itself the local MTU is 1400. Names are `pm3b-<random>-{a,b,c}`; every
 * address lives only inside these namespaces.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** The namespaces and what to ping. */
export interface IcmpNetns {
  /** Namespace names. */
  readonly names: { a: string; b: string; c: string };
  /** argv prefix running fping inside A / C (`nsenter --net=/run/netns/<ns> /usr/bin/fping`). */
  readonly fpingInA: readonly string[];
  readonly fpingInC: readonly string[];
  /** B, one hop from A. */
  readonly neighbour: string;
  /** C, behind the 1400-MTU link (from A). */
  readonly behindSmallMtu: string;
  /** A, seen from C (C's own link has MTU 1400). */
  readonly fromCToA: string;
  /** B answers ICMP host unreachable for it. */
  readonly unreachable: string;
  /** Silently dropped by B. */
  readonly blackholed: string;
  /** Deletes the namespaces (and with them the links). */
  cleanup(): void;
}

/** Why the netns tests cannot run here, or undefined when they can. */
export function netnsUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces (CI runs as root)';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    execFileSync('nsenter', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'needs iproute2 (ip) and util-linux (nsenter)';
  }
  return undefined;
}

/** Creates the namespaces; throws (after cleaning up) if any step fails. */
export function createIcmpNetns(): IcmpNetns {
  const id = randomBytes(3).toString('hex');
  const names = { a: `pm3b-${id}-a`, b: `pm3b-${id}-b`, c: `pm3b-${id}-c` };
  const cleanup = (): void => {
    for (const n of Object.values(names)) {
      try {
        execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
  };
  const ip = (...args: string[]): void => void execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const [va, vb, vb2, vc] = [`pm${id}a`, `pm${id}b`, `pm${id}b2`, `pm${id}c`];
  try {
    for (const n of Object.values(names)) ip('netns', 'add', n);
    ip('link', 'add', va, 'netns', names.a, 'type', 'veth', 'peer', 'name', vb, 'netns', names.b);
    ip('link', 'add', vb2, 'netns', names.b, 'type', 'veth', 'peer', 'name', vc, 'netns', names.c);
    ip('-n', names.a, 'addr', 'add', '10.203.0.1/24', 'dev', va);
    ip('-n', names.b, 'addr', 'add', '10.203.0.2/24', 'dev', vb);
    ip('-n', names.b, 'addr', 'add', '10.204.0.1/24', 'dev', vb2);
    ip('-n', names.c, 'addr', 'add', '10.204.0.2/24', 'dev', vc);
    ip('-n', names.b, 'link', 'set', vb2, 'mtu', '1400');
    ip('-n', names.c, 'link', 'set', vc, 'mtu', '1400');
    for (const [n, dev] of [[names.a, va], [names.b, vb], [names.b, vb2], [names.c, vc]] as const) ip('-n', n, 'link', 'set', dev, 'up');
    for (const n of Object.values(names)) ip('-n', n, 'link', 'set', 'lo', 'up');
    execFileSync('nsenter', [`--net=/run/netns/${names.b}`, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'], { stdio: 'ignore' });
    ip('-n', names.a, 'route', 'add', 'default', 'via', '10.203.0.2');
    ip('-n', names.c, 'route', 'add', 'default', 'via', '10.204.0.1');
    ip('-n', names.b, 'route', 'add', 'unreachable', '10.98.0.0/24');
    ip('-n', names.b, 'route', 'add', 'blackhole', '10.97.0.0/24');
  } catch (err) {
    cleanup();
    throw new Error(`creating the ICMP test namespaces failed: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`);
  }
  const inNs = (n: string): string[] => ['nsenter', `--net=/run/netns/${n}`, '/usr/bin/fping'];
  return {
    names,
    fpingInA: inNs(names.a),
    fpingInC: inNs(names.c),
    neighbour: '10.203.0.2',
    behindSmallMtu: '10.204.0.2',
    fromCToA: '10.203.0.1',
    unreachable: '10.98.0.5',
    blackholed: '10.97.0.5',
    cleanup,
  };
}
