/**
 * Static checks of deploy/terraform (no Terraform binary here): every .tf parses with
 * HashiCorp's HCL2 parser (@cdktf/hcl2json), references resolve, module calls match the
 * modules' variables, variables and outputs are documented, security groups open only
 * what they should; and the cloud-init templates render (templatefile.ts) into configs
 * that probemesh's own loader accepts, units that parse, and a NATS config nats-server accepts.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '@probemesh/common';
import { proberConfigSchema } from '@probemesh/prober';
import { coordinatorConfigSchema } from '@probemesh/coordinator';
import { aggregatorConfigSchema } from '@probemesh/aggregator';
import { findBinary } from '../harness';
import { Body, loadModule, objectKeys, TfModule, unwrap } from './hcl';
import { DEPLOY_DIR } from './paths';
import { renderTemplate, templateVariables, TplValue } from './templatefile';
import { checkUnit, parseUnit } from './unit-file';

const TF_DIR = join(DEPLOY_DIR, 'terraform');
const MODULE_DIRS = ['modules/cloud_init', 'modules/prober_fleet', 'modules/nats_cluster', 'modules/control_plane', 'examples/two-regions'];
const TEMPLATES = join(TF_DIR, 'modules/cloud_init/templates');
/** Arguments of a module block that are not input variables. */
const META_ARGS = new Set(['source', 'version', 'providers', 'for_each', 'count', 'depends_on']);
/** Reference roots that are not declarations. */
const BUILTIN_ROOTS = new Set(['each', 'count', 'path', 'self', 'terraform']);

const modules = new Map<string, TfModule>();

before(async () => {
  for (const d of MODULE_DIRS) modules.set(d, await loadModule(join(TF_DIR, d)));
});

/** hcl2json gives some object values as one-element lists. */
function first(v: unknown): unknown {
  return Array.isArray(v) ? v[0] : v;
}

function mod(d: string): TfModule {
  const m = modules.get(d);
  assert.ok(m, `module ${d} loaded`);
  return m;
}

describe('terraform: parsing and references', () => {
  test('every .tf file under deploy/terraform parses as HCL2', () => {
    const all: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (e.name.endsWith('.tf')) all.push(relative(TF_DIR, join(dir, e.name)));
      }
    };
    walk(TF_DIR);
    const loaded = [...modules.entries()].flatMap(([d, m]) => m.files.map((f) => join(d, f)));
    assert.deepEqual(loaded.sort(), all.sort(), 'every .tf lives in a checked module');
    assert.ok(all.length >= 18, `${all.length} files`);
    for (const m of modules.values()) assert.ok(m.expressions.length > 0);
  });

  for (const d of MODULE_DIRS) {
    test(`${d}: every var., local., module., data. and resource reference resolves`, () => {
      const m = mod(d);
      const bad: string[] = [];
      for (const e of m.expressions) {
        for (const ref of e.refs) {
          const [root, a, b] = ref.split('.');
          const where = `${e.file} ${e.path}: ${ref}`;
          if (BUILTIN_ROOTS.has(root!)) continue;
          if (root === 'var') {
            if (!m.variables.has(a!)) bad.push(`${where} (no variable)`);
          } else if (root === 'local') {
            if (!m.locals.has(a!)) bad.push(`${where} (no local)`);
          } else if (root === 'module') {
            if (!m.modules.has(a!)) bad.push(`${where} (no module)`);
          } else if (root === 'data') {
            if (!m.data.has(`${a}.${b}`)) bad.push(`${where} (no data source)`);
          } else if (e.path.endsWith('.providers') || e.path.includes('.providers.')) {
            if (!m.providerConfigs.has(ref)) bad.push(`${where} (no provider configuration)`);
          } else if (!m.resources.has(`${root}.${a}`)) bad.push(`${where} (no resource)`);
        }
      }
      assert.deepEqual(bad, []);
    });
  }

  test('each.* is used only in blocks with for_each, count.* only with count', () => {
    for (const [d, m] of modules) {
      const blocks: [string, Body][] = [...[...m.resources].map(([k, v]) => [`resource.${k}`, v] as [string, Body]), ...[...m.modules].map(([k, v]) => [`module.${k}`, v] as [string, Body])];
      for (const [name, body] of blocks) {
        const text = JSON.stringify(body);
        if (/\beach\./.test(text)) assert.ok('for_each' in body, `${d} ${name} uses each. without for_each`);
        if (/\bcount\.index/.test(text)) assert.ok('count' in body, `${d} ${name} uses count.index without count`);
      }
    }
  });
});

describe('terraform: module calls, variables and outputs', () => {
  test('module calls pass every required variable and no unknown one, and read only existing outputs', () => {
    let calls = 0;
    for (const [d, m] of modules) {
      for (const [name, call] of m.modules) {
        calls++;
        const childDir = resolve(m.dir, String(call.source));
        const child = [...modules.values()].find((x) => x.dir === childDir);
        assert.ok(child, `${d} module ${name}: source ${call.source} is a checked module`);
        const passed = Object.keys(call).filter((k) => !META_ARGS.has(k));
        const unknown = passed.filter((k) => !child.variables.has(k));
        assert.deepEqual(unknown, [], `${d} module ${name}: unknown arguments`);
        const required = [...child.variables].filter(([, v]) => !('default' in v)).map(([k]) => k);
        const missing = required.filter((k) => !passed.includes(k));
        assert.deepEqual(missing, [], `${d} module ${name}: required variables not passed`);
        // Providers: keys are the child's required providers; values were checked as references.
        for (const key of Object.keys((call.providers as Body | undefined) ?? {})) assert.ok(child.requiredProviders.has(key), `${d} module ${name}: child has no provider ${key}`);
      }
      // module.X[...].output, including the ones hcl2json cuts at a dynamic index.
      for (const e of m.expressions) {
        for (const match of e.text.matchAll(/module\.([\w-]+)((?:\[(?:[^[\]]|\[[^\]]*\])*\])*)\.([A-Za-z_][\w-]*)/g)) {
          const call = m.modules.get(match[1]!);
          assert.ok(call, `${d}: module ${match[1]} exists`);
          const child = [...modules.values()].find((x) => x.dir === resolve(m.dir, String(call.source)));
          assert.ok(child?.outputs.has(match[3]!), `${d} ${e.file}: module ${match[1]} has no output ${match[3]}`);
        }
      }
    }
    assert.ok(calls >= 8, `${calls} module calls checked`);
  });

  test('the example passes a regional provider alias into every AWS module', () => {
    const ex = mod('examples/two-regions');
    assert.deepEqual([...ex.providerConfigs].sort(), ['aws.eu', 'aws.us']);
    for (const [name, call] of ex.modules) {
      const providers = call.providers as Body | undefined;
      assert.ok(providers && typeof providers.aws === 'string', `module ${name} gets providers = { aws = aws.<region> }`);
    }
    const regions = new Set([...ex.modules.values()].map((c) => unwrap((c.providers as Body).aws)));
    assert.deepEqual([...regions].sort(), ['aws.eu', 'aws.us']);
  });

  test('every variable has a type and a description; input checks exist where a wrong value is dangerous', () => {
    let count = 0;
    for (const [d, m] of modules) {
      for (const [name, v] of m.variables) {
        count++;
        assert.ok(typeof v.type === 'string' && v.type.length > 0, `${d} var.${name}: type`);
        assert.ok(typeof v.description === 'string' && v.description.length >= 10, `${d} var.${name}: description`);
        for (const val of (v.validation as Body[] | undefined) ?? []) {
          assert.ok(String(val.condition).includes(`var.${name}`), `${d} var.${name}: validation refers to the variable`);
          assert.ok(typeof val.error_message === 'string' && /\.$/.test(val.error_message), `${d} var.${name}: error_message is a sentence`);
        }
      }
    }
    const mustValidate: [string, string][] = [
      ['modules/cloud_init', 'service'], ['modules/cloud_init', 'node_id'], ['modules/cloud_init', 'nats_password'], ['modules/cloud_init', 'install'],
      ['modules/prober_fleet', 'zones'], ['modules/prober_fleet', 'monitoring_cidrs'], ['modules/nats_cluster', 'node_count'],
      ['modules/nats_cluster', 'client_cidr_blocks'], ['modules/control_plane', 'operator_cidrs'], ['modules/control_plane', 'remote_write_urls'],
    ];
    for (const [d, name] of mustValidate) assert.ok(mod(d).variables.get(name)?.validation, `${d} var.${name} has a validation block`);
    const secrets: [string, string][] = [['modules/cloud_init', 'nats_password'], ['modules/cloud_init', 'tls'], ['modules/nats_cluster', 'ca_private_key_pem'], ['modules/prober_fleet', 'nats_password']];
    for (const [d, name] of secrets) assert.equal(mod(d).variables.get(name)?.sensitive, true, `${d} var.${name} is sensitive`);
    assert.ok(count >= 60, `${count} variables`);
  });

  test('outputs have descriptions and values; the promised ones exist', () => {
    for (const [d, m] of modules) {
      assert.ok(m.outputs.size > 0, `${d} has outputs`);
      for (const [name, o] of m.outputs) {
        assert.ok(typeof o.description === 'string' && o.description.length >= 10, `${d} output ${name}: description`);
        assert.ok('value' in o, `${d} output ${name}: value`);
      }
    }
    const promised: [string, string][] = [
      ['modules/nats_cluster', 'nats_urls'], ['modules/control_plane', 'admin_endpoint'], ['modules/prober_fleet', 'prober_ids_by_zone'],
      ['modules/cloud_init', 'user_data'], ['examples/two-regions', 'nats_urls'], ['examples/two-regions', 'admin_endpoint'], ['examples/two-regions', 'prober_ids_by_zone'],
    ];
    for (const [d, name] of promised) assert.ok(mod(d).outputs.has(name), `${d} output ${name}`);
    assert.equal(mod('modules/cloud_init').outputs.get('user_data')?.sensitive, true);
  });
});

describe('terraform: security groups', () => {
  function ingressRules(): { module: string; name: string; body: Body }[] {
    return [...modules].flatMap(([d, m]) => [...m.resources].filter(([k]) => k.startsWith('aws_vpc_security_group_ingress_rule.')).map(([k, body]) => ({ module: d, name: k, body })));
  }

  test('prober :9115 only from the monitoring CIDRs, admin :50051 only from the operator CIDRs', () => {
    const rules = ingressRules();
    const byPort = (port: number) => rules.filter((r) => Number(r.body.from_port) <= port && port <= Number(r.body.to_port));
    const p9115 = byPort(9115);
    assert.equal(p9115.length, 1);
    assert.equal(p9115[0]!.module, 'modules/prober_fleet');
    assert.equal(unwrap(p9115[0]!.body.for_each), 'toset(var.monitoring_cidrs)');
    assert.equal(unwrap(p9115[0]!.body.cidr_ipv4), 'each.value');
    const p50051 = byPort(50051);
    assert.equal(p50051.length, 1);
    assert.equal(unwrap(p50051[0]!.body.for_each), 'toset(var.operator_cidrs)');
    assert.equal(unwrap(p50051[0]!.body.cidr_ipv4), 'each.value');
  });

  test('NATS :4222 only from mesh nodes (security group or their VPC CIDRs) and :6222 only between NATS servers', () => {
    const nats = mod('modules/nats_cluster');
    const rules = ingressRules().filter((r) => r.module === 'modules/nats_cluster');
    const client = rules.filter((r) => Number(r.body.from_port) === 4222);
    assert.equal(client.length, 2);
    const sg = client.find((r) => 'referenced_security_group_id' in r.body);
    assert.equal(unwrap(sg?.body.referenced_security_group_id), 'aws_security_group.client.id');
    const cidr = client.find((r) => 'cidr_ipv4' in r.body);
    assert.equal(unwrap(cidr?.body.for_each), 'toset(var.client_cidr_blocks)');
    const routes = rules.filter((r) => Number(r.body.from_port) === 6222);
    assert.equal(routes.length, 1);
    assert.equal(unwrap(routes[0]!.body.referenced_security_group_id), 'aws_security_group.nats.id');
    assert.equal(unwrap(routes[0]!.body.security_group_id), 'aws_security_group.nats.id');
    assert.ok(nats.resources.has('aws_security_group.client'));
  });

  test('no ingress rule is open to the internet, and every rule names one port', () => {
    for (const r of ingressRules()) {
      assert.notEqual(r.body.cidr_ipv4, '0.0.0.0/0', `${r.module} ${r.name}`);
      assert.notEqual(r.body.cidr_ipv6, '::/0', `${r.module} ${r.name}`);
      assert.equal(r.body.ip_protocol, 'tcp', `${r.module} ${r.name}`);
      assert.equal(r.body.from_port, r.body.to_port, `${r.module} ${r.name}`);
    }
  });
});

// ---- cloud-init rendering ------------------------------------------------------------------

/** The variables cloud_init/main.tf passes to its templates, for one host (mirrors main.tf). */
function templateVars(service: string, over: Record<string, TplValue> = {}): Record<string, TplValue> {
  return {
    service,
    node_id: service === 'prober' ? 'pm-eu-west-1a-01' : `pm-${service}-1`,
    region: service === 'prober' ? 'eu-west-1' : 'local',
    zone: service === 'prober' ? 'eu-west-1a' : 'default',
    capacity: 2,
    nats_servers: ['nats://10.10.1.10:4222', 'nats://10.10.2.10:4222', 'nats://10.10.3.10:4222'],
    nats_user: 'probemesh',
    stream_replicas: 3,
    remote_write_urls: ['https://prometheus.example.internal/api/v1/write'],
    nats_cluster_name: 'pm',
    nats_routes: ['tls://10.10.1.10:6222', 'tls://10.10.2.10:6222', 'tls://10.10.3.10:6222'],
    log_level: 'info',
    tls_dir: '/etc/probemesh/tls',
    ...over,
  };
}

const CONFIG_FILES: Record<string, string> = { prober: 'prober.yml', coordinator: 'coordinator.yml', aggregator: 'aggregator.yml', nats: 'nats-server.conf' };
const PASSWORD = 'correct-horse-battery-staple';

interface RenderedHost {
  config: string;
  userData: string;
  cloudConfig: Record<string, unknown>;
  files: Map<string, string>;
}

/** Renders a host's service config and cloud-config the way cloud_init/main.tf does. */
function renderHost(service: string, install = { method: 'git', url: 'https://github.com/probemesh/probemesh.git', ref: 'v0.1.0' }): RenderedHost {
  const vars = templateVars(service);
  const config = renderTemplate(readFileSync(join(TEMPLATES, `${CONFIG_FILES[service]}.tftpl`), 'utf8'), vars);
  const unitName = `probemesh-${service}.service`;
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const packages: Record<string, string[]> = { prober: ['nodejs', 'npm', 'fping', 'bpftrace', 'chrony'], coordinator: ['nodejs', 'npm'], aggregator: ['nodejs', 'npm'], nats: ['nats-server'] };
  const userData = renderTemplate(readFileSync(join(TEMPLATES, 'cloud-config.yaml.tftpl'), 'utf8'), {
    ...vars,
    packages: [...packages[service]!, ...(install.method === 'git' && service !== 'nats' ? ['git'] : [])],
    config_path: `/etc/probemesh/${CONFIG_FILES[service]}`,
    service_config_b64: b64(config),
    env_path: `/etc/probemesh/${service}.env`,
    env_b64: b64(`PROBEMESH_NATS_PASSWORD=${PASSWORD}\n`),
    unit_name: unitName,
    unit_b64: b64(readFileSync(join(DEPLOY_DIR, 'systemd', unitName), 'utf8')),
    ca_b64: b64('-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n'),
    cert_b64: b64(service === 'nats' ? '-----BEGIN CERTIFICATE-----\nNODE\n-----END CERTIFICATE-----\n' : ''),
    key_b64: b64(service === 'nats' ? '-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n' : ''),
    install_method: install.method,
    install_url: install.url,
    install_ref: install.ref,
  });
  const cloudConfig = parseYaml(userData) as Record<string, unknown>;
  const files = new Map<string, string>();
  for (const f of cloudConfig.write_files as { path: string; encoding: string; content: string }[]) {
    assert.equal(f.encoding, 'b64', f.path);
    files.set(f.path, Buffer.from(f.content, 'base64').toString('utf8'));
  }
  return { config, userData, cloudConfig, files };
}

/** PROBEMESH_* variables of an env file. */
function envFile(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

describe('cloud_init: rendering', () => {
  test('main.tf passes exactly the variables the templates read', () => {
    const m = mod('modules/cloud_init');
    const base = objectKeys(first(m.locals.get('template_vars')));
    assert.deepEqual(base.sort(), Object.keys(templateVars('prober')).sort(), 'templateVars() mirrors local.template_vars');
    for (const f of Object.values(CONFIG_FILES)) {
      const used = templateVariables(readFileSync(join(TEMPLATES, `${f}.tftpl`), 'utf8'));
      assert.deepEqual([...used].filter((v) => !base.includes(v)), [], `${f}.tftpl reads only template_vars`);
    }
    const userData = String(m.locals.get('user_data'));
    const extra = objectKeys(/merge\(local\.template_vars,\s*(\{[\s\S]*\})\)\)\}$/.exec(userData)?.[1] ?? '{}');
    const used = templateVariables(readFileSync(join(TEMPLATES, 'cloud-config.yaml.tftpl'), 'utf8'));
    assert.deepEqual([...used].filter((v) => !base.includes(v) && !extra.includes(v)).sort(), [], 'cloud-config reads only what main.tf passes');
    assert.deepEqual(extra.filter((v) => !used.has(v)), [], 'main.tf passes nothing the cloud-config ignores');
    // Every file main.tf reads exists, for every service its validation allows.
    for (const service of Object.keys(CONFIG_FILES)) {
      assert.ok(existsSync(join(TEMPLATES, `${CONFIG_FILES[service]}.tftpl`)), `${service} template`);
      assert.ok(existsSync(join(DEPLOY_DIR, 'systemd', `probemesh-${service}.service`)), `${service} unit`);
    }
    assert.equal(unwrap(m.locals.get('unit_file')), 'file("${path.module}/../../../systemd/${local.unit_name}")');
  });

  test('prober: the config cloud-init writes loads with the prober\'s own loader', () => {
    const host = renderHost('prober');
    assert.ok(host.userData.startsWith('#cloud-config\n'));
    const written = host.files.get('/etc/probemesh/prober.yml');
    assert.equal(written, host.config);
    const cfg = loadConfig(proberConfigSchema, { text: written, env: {} });
    assert.equal(cfg.id, 'pm-eu-west-1a-01');
    assert.equal(cfg.region, 'eu-west-1');
    assert.equal(cfg.zone, 'eu-west-1a');
    assert.equal(cfg.capacity, 2);
    assert.deepEqual(cfg.nats.servers, ['nats://10.10.1.10:4222', 'nats://10.10.2.10:4222', 'nats://10.10.3.10:4222']);
    assert.equal(cfg.nats.user, 'probemesh');
    assert.equal(cfg.nats.password, undefined, 'no secret in the YAML');
    assert.equal(cfg.stream.replicas, 3);
    assert.equal(cfg.http.listen, '0.0.0.0:9115');
    assert.equal(cfg.heartbeat_interval, 1000);
    // The env file's override names a real key.
    const env = envFile(host.files.get('/etc/probemesh/prober.env')!);
    assert.equal(loadConfig(proberConfigSchema, { text: written, env }).nats.password, PASSWORD);
  });

  test('coordinator and aggregator configs load with their loaders', () => {
    const c = renderHost('coordinator');
    const cc = loadConfig(coordinatorConfigSchema, { text: c.files.get('/etc/probemesh/coordinator.yml'), env: {} });
    assert.equal(cc.id, 'pm-coordinator-1');
    assert.equal(cc.grpc.listen, '0.0.0.0:50051');
    assert.equal(cc.http.listen, '0.0.0.0:9117');
    assert.equal(cc.stream.replicas, 3);
    assert.equal(loadConfig(coordinatorConfigSchema, { text: c.config, env: envFile(c.files.get('/etc/probemesh/coordinator.env')!) }).nats.password, PASSWORD);
    const a = renderHost('aggregator');
    const ac = loadConfig(aggregatorConfigSchema, { text: a.files.get('/etc/probemesh/aggregator.yml'), env: {} });
    assert.equal(ac.id, 'pm-aggregator-1');
    assert.deepEqual(ac.remote_write.map((r) => r.url), ['https://prometheus.example.internal/api/v1/write']);
    assert.equal(ac.http.listen, '0.0.0.0:9116');
  });

  test('a bad value in a rendered config is refused by the loader with its key path', () => {
    const vars = templateVars('prober', { node_id: 'has space', capacity: 0 });
    const text = renderTemplate(readFileSync(join(TEMPLATES, 'prober.yml.tftpl'), 'utf8'), vars);
    assert.throws(() => loadConfig(proberConfigSchema, { text, env: {} }), (err: Error) => /\bid\b/.test(err.message) && /capacity/.test(err.message));
  });

  test('cloud-config installs the packages, writes the unit from deploy/systemd and enables it', () => {
    for (const service of ['prober', 'coordinator', 'aggregator', 'nats']) {
      const host = renderHost(service);
      const unitName = `probemesh-${service}.service`;
      const unit = host.files.get(`/etc/systemd/system/${unitName}`);
      assert.equal(unit, readFileSync(join(DEPLOY_DIR, 'systemd', unitName), 'utf8'), `${service}: unit copied verbatim`);
      assert.deepEqual(checkUnit(parseUnit(unit!)), [], `${service}: unit well-formed`);
      const exec = parseUnit(unit!).get('Service')!.get('ExecStart')![0]!;
      if (service !== 'nats') assert.equal(exec, `/usr/local/bin/probemesh ${service} --config /etc/probemesh/${CONFIG_FILES[service]}`);
      const runcmd = host.cloudConfig.runcmd as string[][];
      assert.deepEqual(runcmd.at(-1), ['systemctl', 'enable', '--now', unitName]);
      assert.ok(host.files.get('/etc/probemesh/tls/ca.pem')?.includes('BEGIN CERTIFICATE'));
      const pkgs = host.cloudConfig.packages as string[];
      if (service === 'prober') for (const p of ['fping', 'bpftrace', 'nodejs', 'git']) assert.ok(pkgs.includes(p), `prober installs ${p}`);
      if (service === 'nats') {
        assert.ok(pkgs.includes('nats-server'));
        assert.ok(host.files.get('/etc/probemesh/tls/key.pem')?.includes('PRIVATE KEY'));
        assert.ok(!runcmd.some((c) => c[0] === 'git' || c[0] === 'npm'), 'NATS hosts do not install probemesh');
      } else {
        assert.ok(!host.files.has('/etc/probemesh/tls/key.pem'), `${service}: no private key`);
        assert.deepEqual(runcmd.find((c) => c[0] === 'ln'), ['ln', '-sf', '/opt/probemesh/services/cli/bin/probemesh.js', '/usr/local/bin/probemesh']);
      }
    }
    const npm = renderHost('prober', { method: 'npm', url: 'https://example.com/probemesh-cli-0.1.0.tgz', ref: 'main' });
    assert.deepEqual((npm.cloudConfig.runcmd as string[][])[0], ['npm', 'install', '--global', '--omit=dev', '--no-audit', '--no-fund', 'https://example.com/probemesh-cli-0.1.0.tgz']);
    assert.ok(!(npm.cloudConfig.packages as string[]).includes('git'));
  });

  test('nats: nats-server accepts the rendered cluster config (nats-server -t) with real certificates', (t) => {
    let natsServer: string;
    try {
      natsServer = findBinary('nats-server', 'nats-server');
    } catch {
      t.skip('nats-server not installed');
      return;
    }
    const openssl = spawnSync('openssl', ['version']);
    if (openssl.status !== 0) {
      t.skip('openssl not installed (needed to make test certificates)');
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), 'pm-nats-conf-'));
    try {
      const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=test CA');
      ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'node.csr', '-subj', '/CN=pm-nats-1');
      writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
      ossl('x509', '-req', '-in', 'node.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'cert.pem', '-days', '1', '-extfile', 'ext.cnf');
      const conf = renderTemplate(readFileSync(join(TEMPLATES, 'nats-server.conf.tftpl'), 'utf8'), templateVars('nats', { node_id: 'pm-nats-1', tls_dir: dir }))
        .replace('/var/lib/probemesh-nats', join(dir, 'js'));
      writeFileSync(join(dir, 'nats-server.conf'), conf);
      const res = spawnSync(natsServer, ['-c', join(dir, 'nats-server.conf'), '-t'], { env: { ...process.env, PROBEMESH_NATS_PASSWORD: PASSWORD }, encoding: 'utf8', timeout: 20_000 });
      assert.equal(res.status, 0, `nats-server -t: ${res.stdout}${res.stderr}`);
      assert.match(res.stdout + res.stderr, /configuration file .* is valid/);
      // And a broken one is refused (the check is real).
      writeFileSync(join(dir, 'bad.conf'), conf.replace('verify: true', 'verify: maybe {'));
      const bad = spawnSync(natsServer, ['-c', join(dir, 'bad.conf'), '-t'], { env: { ...process.env, PROBEMESH_NATS_PASSWORD: PASSWORD }, encoding: 'utf8', timeout: 20_000 });
      assert.notEqual(bad.status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
