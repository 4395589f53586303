/**
 * A systemd unit file reader and structural check: sections, known keys per section,
 * values of the keys probemesh relies on. `systemd-analyze verify` is the real check
 * where it exists (systemd.test.ts runs both).
 */

/** A parsed unit: section → key → values (a key may repeat). */
export type UnitFile = Map<string, Map<string, string[]>>;

/** Parses unit file text (comments, continuation lines, repeated keys). */
export function parseUnit(text: string): UnitFile {
  const unit: UnitFile = new Map();
  let section: Map<string, string[]> | undefined;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const sec = /^\[([A-Za-z]+)\]$/.exec(line);
    if (sec) {
      if (unit.has(sec[1]!)) throw new Error(`line ${i + 1}: section [${sec[1]}] repeated`);
      section = new Map();
      unit.set(sec[1]!, section);
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*)$/.exec(line);
    if (!kv) throw new Error(`line ${i + 1}: not "Key=value": ${line}`);
    if (!section) throw new Error(`line ${i + 1}: key outside a section`);
    const values = section.get(kv[1]!) ?? [];
    values.push(kv[2]!);
    section.set(kv[1]!, values);
  });
  return unit;
}

/** Keys this project's units may use, per section (a subset of systemd's). */
export const KNOWN_KEYS: Record<string, readonly string[]> = {
  Unit: ['Description', 'Documentation', 'After', 'Before', 'Wants', 'Requires', 'BindsTo', 'PartOf', 'ConditionPathExists', 'StartLimitIntervalSec', 'StartLimitBurst'],
  Service: [
    'Type', 'User', 'Group', 'DynamicUser', 'ExecStart', 'ExecStartPre', 'ExecReload', 'ExecStop', 'Environment', 'EnvironmentFile', 'WorkingDirectory',
    'Restart', 'RestartSec', 'TimeoutStartSec', 'TimeoutStopSec', 'KillMode', 'KillSignal', 'LimitNOFILE', 'LimitMEMLOCK',
    'CapabilityBoundingSet', 'AmbientCapabilities', 'NoNewPrivileges', 'SecureBits',
    'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectKernelLogs',
    'ProtectControlGroups', 'ProtectClock', 'ProtectHostname', 'ProtectProc', 'ProcSubset', 'RestrictAddressFamilies', 'RestrictNamespaces',
    'RestrictRealtime', 'RestrictSUIDSGID', 'LockPersonality', 'MemoryDenyWriteExecute', 'RemoveIPC', 'SystemCallArchitectures', 'SystemCallFilter',
    'UMask', 'StateDirectory', 'RuntimeDirectory', 'ReadOnlyPaths', 'ReadWritePaths', 'InaccessiblePaths',
  ],
  Install: ['WantedBy', 'RequiredBy', 'Alias'],
};

/** Linux capabilities systemd accepts (the ones our units may name). */
const CAPABILITIES = new Set(['CAP_NET_RAW', 'CAP_BPF', 'CAP_PERFMON', 'CAP_SYS_ADMIN', 'CAP_SYS_RESOURCE', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_PTRACE', 'CAP_DAC_READ_SEARCH']);

/** Problems of a unit (empty = well-formed). `dropIn` units need no [Unit]/[Install]. */
export function checkUnit(unit: UnitFile, opts: { dropIn?: boolean } = {}): string[] {
  const issues: string[] = [];
  for (const [section, keys] of unit) {
    const known = KNOWN_KEYS[section];
    if (!known) {
      issues.push(`unknown section [${section}]`);
      continue;
    }
    for (const k of keys.keys()) if (!known.includes(k)) issues.push(`[${section}] unknown key ${k}`);
  }
  const svc = unit.get('Service');
  if (!svc) return [...issues, 'no [Service] section'];
  if (!opts.dropIn) {
    for (const s of ['Unit', 'Install']) if (!unit.has(s)) issues.push(`no [${s}] section`);
    const exec = svc.get('ExecStart');
    if (exec?.length !== 1) issues.push('exactly one ExecStart expected');
    else if (!/^\/\S+/.test(exec[0]!)) issues.push(`ExecStart must start with an absolute path: ${exec[0]}`);
    if (!unit.get('Install')?.get('WantedBy')?.includes('multi-user.target')) issues.push('WantedBy=multi-user.target missing');
  }
  for (const key of ['CapabilityBoundingSet', 'AmbientCapabilities']) {
    for (const v of svc.get(key) ?? []) for (const cap of v.split(/\s+/).filter(Boolean)) if (!CAPABILITIES.has(cap)) issues.push(`${key}: unknown capability ${cap}`);
  }
  for (const key of ['NoNewPrivileges', 'PrivateTmp', 'ProtectHome', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectControlGroups']) {
    for (const v of svc.get(key) ?? []) if (!['yes', 'no', 'true', 'false', 'read-only', 'tmpfs'].includes(v)) issues.push(`${key}: bad value ${v}`);
  }
  for (const v of svc.get('Restart') ?? []) if (!['no', 'on-success', 'on-failure', 'on-abnormal', 'on-watchdog', 'on-abort', 'always'].includes(v)) issues.push(`Restart: bad value ${v}`);
  for (const v of svc.get('RestrictAddressFamilies') ?? []) for (const f of v.split(/\s+/)) if (!/^~?AF_[A-Z0-9]+$/.test(f)) issues.push(`RestrictAddressFamilies: bad family ${f}`);
  return issues;
}

/** The last value of a key (systemd: later assignments win), or undefined. */
export function lastValue(unit: UnitFile, section: string, key: string): string | undefined {
  const v = unit.get(section)?.get(key);
  return v?.[v.length - 1];
}

/** Effective capability list of a key (an empty assignment resets it, as in systemd). */
export function capabilitySet(unit: UnitFile, key: string): string[] {
  let caps: string[] = [];
  for (const v of unit.get('Service')?.get(key) ?? []) caps = v.trim() === '' ? [] : [...caps, ...v.split(/\s+/).filter(Boolean)];
  return caps;
}
