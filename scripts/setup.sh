#!/usr/bin/env bash
# probemesh setup: npm dependencies and the Debian packages the services and tests run
# (nats-server, prometheus, bpftrace, ...). Run by `npm start` and `npm test` before the
# build, so it must be quiet and fast when everything is there: one `setup: ok` line.
#
# Environment:
#   PROBEMESH_SETUP_SKIP_APT=1   never touch Debian packages (only report what is missing)
set -euo pipefail

cd "$(dirname "$0")/.."
t0=${EPOCHREALTIME/[.,]/}

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- Node -------------------------------------------------------------------------------
command -v node >/dev/null 2>&1 || die "node not found; install Node.js >= 20 (https://nodejs.org or the nodesource Debian repo)"
# One node call (start-up is most of this script's time): version, then the workspace globs.
mapfile -t node_info < <(node -e 'console.log(process.versions.node); for (const w of require("./package.json").workspaces ?? []) console.log(w)')
node_version=${node_info[0]:-0}
[[ ${node_version%%.*} -ge 20 ]] || die "Node.js >= 20 required, found v$node_version"

# --- npm dependencies -------------------------------------------------------------------
# node_modules/.package-lock.json is npm's record of what is installed; it must be newer than
# the lockfile and every workspace manifest, else the install is stale.
npm_state="npm deps up to date"
manifests=(package.json)
for ws in "${node_info[@]:1}"; do
  for m in $ws/package.json; do [[ -f $m ]] && manifests+=("$m"); done
done
stale=""
if [[ ! -f node_modules/.package-lock.json ]]; then
  stale="node_modules missing"
else
  for f in package-lock.json "${manifests[@]}"; do
    if [[ -f $f && $f -nt node_modules/.package-lock.json ]]; then stale="$f changed"; break; fi
  done
fi
if [[ -n $stale ]]; then
  if [[ -f package-lock.json ]]; then
    say "installing npm dependencies ($stale): npm ci --no-audit --no-fund"
    npm ci --no-audit --no-fund || die "npm ci failed (if package.json changed, run 'npm install' to update package-lock.json)"
  else
    say "installing npm dependencies ($stale, no package-lock.json): npm install --no-audit --no-fund"
    npm install --no-audit --no-fund || die "npm install failed"
  fi
  touch node_modules/.package-lock.json
  npm_state="npm deps installed"
fi

# --- Debian packages --------------------------------------------------------------------
# Each package is checked by a file it ships (fast, and works without /usr/sbin in PATH).
has_bin() {
  local b
  for b in "$@"; do
    command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b || -x /sbin/$b || -x /usr/bin/$b ]] || return 1
  done
}
declare -A check=(
  [nats-server]="has_bin nats-server"
  [prometheus]="has_bin prometheus promtool"
  [bpftrace]="has_bin bpftrace"
  [fping]="has_bin fping"
  [prometheus-blackbox-exporter]="has_bin prometheus-blackbox-exporter"
  [openssl]="has_bin openssl"
  [iproute2]="has_bin ip"
  [iptables]="has_bin iptables"
  [libnetfilter-queue-dev]="test -f /usr/include/libnetfilter_queue/libnetfilter_queue.h"
  [gcc]="has_bin gcc"
)
order=(nats-server prometheus bpftrace fping prometheus-blackbox-exporter openssl iproute2 iptables libnetfilter-queue-dev gcc)
missing=()
for p in "${order[@]}"; do ${check[$p]} || missing+=("$p"); done

apt_state="${#order[@]} Debian packages present"
if ((${#missing[@]})); then
  install_cmd="apt-get install -y --no-install-recommends ${missing[*]}"
  if [[ ${PROBEMESH_SETUP_SKIP_APT:-} == 1 ]]; then
    say "missing Debian packages: ${missing[*]} (PROBEMESH_SETUP_SKIP_APT=1; install with: sudo $install_cmd)"
    apt_state="${#missing[@]} Debian packages MISSING: ${missing[*]}"
  elif [[ $(id -u) -ne 0 ]]; then
    say "missing Debian packages: ${missing[*]} (not root; integration tests that need them will fail or skip)"
    say "to install them run: sudo apt-get update && sudo $install_cmd"
    apt_state="${#missing[@]} Debian packages MISSING: ${missing[*]}"
  elif ! command -v apt-get >/dev/null 2>&1; then
    say "missing packages: ${missing[*]} and no apt-get here (not Debian?); install them with your package manager"
    apt_state="${#missing[@]} packages MISSING: ${missing[*]}"
  else
    log=$(mktemp /tmp/probemesh-setup-apt.XXXXXX.log)
    # A policy-rc.d that exits 101 stops the packages' postinst from starting their daemons:
    # a system nats-server/prometheus would hold ports 4222/9090, and tests must never talk
    # to servers they did not start. Any existing policy-rc.d is put back afterwards.
    policy=/usr/sbin/policy-rc.d
    backup=""
    if [[ -e $policy || -L $policy ]]; then
      backup=$(mktemp /usr/sbin/.policy-rc.d.probemesh.XXXXXX)
      mv -f "$policy" "$backup"
    fi
    restore_policy() {
      rm -f "$policy"
      if [[ -n $backup ]]; then mv -f "$backup" "$policy"; fi
    }
    trap restore_policy EXIT
    trap 'exit 130' INT TERM
    printf '#!/bin/sh\n# written by probemesh scripts/setup.sh while installing; removed afterwards\nexit 101\n' >"$policy"
    chmod 755 "$policy"

    say "installing Debian packages: ${missing[*]} (apt-get update + install, daemons not started; log: $log)"
    export DEBIAN_FRONTEND=noninteractive
    # Wait for another apt/dpkg (e.g. unattended-upgrades) instead of failing at once.
    apt_opts=(-o DPkg::Lock::Timeout=300)
    if ! apt-get "${apt_opts[@]}" update -q >>"$log" 2>&1; then
      tail -n 20 "$log" >&2
      die "apt-get update failed (full log: $log)"
    fi
    if ! apt-get "${apt_opts[@]}" install -y -q --no-install-recommends "${missing[@]}" >>"$log" 2>&1; then
      tail -n 20 "$log" >&2
      die "apt-get install ${missing[*]} failed (full log: $log)"
    fi
    restore_policy
    trap - EXIT INT TERM
    still=()
    for p in "${missing[@]}"; do ${check[$p]} || still+=("$p"); done
    ((${#still[@]} == 0)) || die "installed but still missing: ${still[*]} (log: $log)"
    rm -f "$log"
    apt_state="${#order[@]} Debian packages present (${#missing[@]} installed)"
  fi
fi

# --- tracefs ------------------------------------------------------------------------------
# bpftrace reads tracepoint formats from tracefs; some machines do not mount it.
if [[ $(id -u) -eq 0 && -d /sys/kernel/tracing && ! -e /sys/kernel/tracing/events ]]; then
  if mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null; then
    say "mounted tracefs at /sys/kernel/tracing (bpftrace needs it for tracepoints)"
  else
    say "could not mount tracefs at /sys/kernel/tracing: eBPF measurements will be unavailable"
  fi
fi

t1=${EPOCHREALTIME/[.,]/}
say "ok (node v$node_version, $npm_state, $apt_state, $(( (t1 - t0) / 1000 ))ms)"
