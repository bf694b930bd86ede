import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { notificationDefaults, notificationSettingsSchema } from './notifications/settings.js';

// One config file (JSON, path in NT_CONFIG) plus NT_* environment overrides,
// validated once at start-up. Option names follow Nova's where Nova has one.

const hostName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be a host name (letters, digits, . _ -)');

const listen = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port');

const pemFile = z.string().startsWith('/', 'must be an absolute path to a PEM file');

/**
 * TLS to the Temporal frontend. Absent or null: plaintext. An object (even {}):
 * TLS, the server checked against `ca` (else the system roots) and `server_name`
 * (else the host of `address`); `cert` + `key`: mutual TLS with that client pair.
 */
const temporalTls = z
  .object({
    ca: pemFile.nullable().optional(),
    cert: pemFile.nullable().optional(),
    key: pemFile.nullable().optional(),
    server_name: z
      .string()
      .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, 'must be a DNS name')
      .nullable()
      .optional(),
  })
  .strict()
  .refine((t) => !t.cert === !t.key, { message: 'cert and key go together (mutual TLS)', path: ['cert'] });

const configSchema = z.object({
  host: hostName,
  instances_path: z.string().startsWith('/', 'must be an absolute path'),
  images_path: z.string().startsWith('/', 'must be an absolute path'),
  vif_plugging_timeout: z.number().int().min(0).max(86400),
  vif_plugging_is_fatal: z.boolean(),
  wait_for_vif_plugged: z.enum(['inactive', 'all', 'none']),
  host_unavailable_timeout: z.number().int().min(1),
  host_heartbeat_timeout: z.number().int().min(2).max(600),
  firewall_driver: z.enum(['nftables', 'openvswitch', 'noop']),
  integration_bridge: z.string().regex(/^[A-Za-z0-9_-]{1,15}$/, 'must be a network device name'),
  libvirt: z.object({
    uri: z.string().min(1),
    virt_type: z.enum(['kvm', 'qemu']),
  }),
  neutron: z.object({
    url: z.url().nullable(),
    token: z.string().nullable(),
  }),
  temporal: z.object({
    address: listen,
    namespace: z.string().min(1),
    tls: temporalTls.nullable().optional(),
  }),
  api: z.object({
    listen: listen,
    // Only the control plane serves the API; it refuses to start without a token.
    tokens: z.array(z.string().min(8, 'tokens must be at least 8 characters')),
  }),
  database: z.object({
    path: z.string().min(1),
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgresql:// URL')
      .nullable()
      .optional(),
  }),
  // Optional in the type (configs built in code may leave it out); loadConfig always fills it.
  notifications: notificationSettingsSchema.optional(),
});

export type Config = z.infer<typeof configSchema>;

const stateDir = process.env.NT_STATE_DIR ?? '/var/lib/nova-temporal';

function defaults(): Config {
  return {
    host: os.hostname(),
    instances_path: `${stateDir}/instances`,
    images_path: `${stateDir}/images`,
    vif_plugging_timeout: 300,
    vif_plugging_is_fatal: true,
    wait_for_vif_plugged: 'inactive',
    host_unavailable_timeout: 600,
    // Host activities heartbeat every second: a dead worker is noticed this fast.
    host_heartbeat_timeout: 10,
    firewall_driver: 'nftables',
    integration_bridge: 'br-int',
    libvirt: { uri: 'qemu:///system', virt_type: existsSync('/dev/kvm') ? 'kvm' : 'qemu' },
    neutron: { url: null, token: null },
    temporal: { address: '127.0.0.1:7233', namespace: 'default', tls: null },
    api: { listen: '127.0.0.1:8774', tokens: [] },
    database: { path: `${stateDir}/nova-temporal.sqlite`, url: null },
    notifications: notificationDefaults(),
  };
}

function parseBool(name: string, v: string): boolean {
  if (['true', '1', 'yes'].includes(v.toLowerCase())) return true;
  if (['false', '0', 'no'].includes(v.toLowerCase())) return false;
  throw new ConfigError(`${name}: expected true or false, got ${JSON.stringify(v)}`);
}

function parseInt10(name: string, v: string): number {
  if (!/^\d+$/.test(v)) throw new ConfigError(`${name}: expected a whole number, got ${JSON.stringify(v)}`);
  return Number(v);
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Environment overrides (DESIGN.md section 7a), applied on top of the file. */
function applyEnv(c: Record<string, unknown> & Config, env: NodeJS.ProcessEnv): void {
  const e = (k: string) => (env[k] === undefined || env[k] === '' ? undefined : env[k]);
  const v = (k: string, set: (s: string) => void) => {
    const s = e(k);
    if (s !== undefined) set(s);
  };
  v('NT_HOST', (s) => (c.host = s));
  v('NT_INSTANCES_PATH', (s) => (c.instances_path = s));
  v('NT_IMAGES_PATH', (s) => (c.images_path = s));
  v('NT_VIF_PLUGGING_TIMEOUT', (s) => (c.vif_plugging_timeout = parseInt10('NT_VIF_PLUGGING_TIMEOUT', s)));
  v('NT_VIF_PLUGGING_IS_FATAL', (s) => (c.vif_plugging_is_fatal = parseBool('NT_VIF_PLUGGING_IS_FATAL', s)));
  v('NT_WAIT_FOR_VIF_PLUGGED', (s) => (c.wait_for_vif_plugged = s as Config['wait_for_vif_plugged']));
  v('NT_HOST_UNAVAILABLE_TIMEOUT', (s) => (c.host_unavailable_timeout = parseInt10('NT_HOST_UNAVAILABLE_TIMEOUT', s)));
  v('NT_HOST_HEARTBEAT_TIMEOUT', (s) => (c.host_heartbeat_timeout = parseInt10('NT_HOST_HEARTBEAT_TIMEOUT', s)));
  v('NT_FIREWALL_DRIVER', (s) => (c.firewall_driver = s as Config['firewall_driver']));
  v('NT_INTEGRATION_BRIDGE', (s) => (c.integration_bridge = s));
  v('NT_LIBVIRT_URI', (s) => (c.libvirt.uri = s));
  v('NT_VIRT_TYPE', (s) => (c.libvirt.virt_type = s as Config['libvirt']['virt_type']));
  v('NT_NEUTRON_URL', (s) => (c.neutron.url = s));
  v('NT_NEUTRON_TOKEN', (s) => (c.neutron.token = s));
  v('NT_TEMPORAL_ADDRESS', (s) => (c.temporal.address = s));
  v('NT_TEMPORAL_NAMESPACE', (s) => (c.temporal.namespace = s));
  // Any NT_TEMPORAL_TLS_* setting turns TLS on; NT_TEMPORAL_TLS=true alone: TLS with the
  // system roots; NT_TEMPORAL_TLS=false: plaintext whatever else is set.
  const tlsFiles = [
    ['NT_TEMPORAL_TLS_CA', 'ca'],
    ['NT_TEMPORAL_TLS_CERT', 'cert'],
    ['NT_TEMPORAL_TLS_KEY', 'key'],
    ['NT_TEMPORAL_TLS_SERVER_NAME', 'server_name'],
  ] as const;
  for (const [key, field] of tlsFiles) v(key, (s) => ((c.temporal.tls ??= {})[field] = s));
  v('NT_TEMPORAL_TLS', (s) => (c.temporal.tls = parseBool('NT_TEMPORAL_TLS', s) ? (c.temporal.tls ?? {}) : null));
  v('NT_API_LISTEN', (s) => (c.api.listen = s));
  v(
    'NT_API_TOKENS',
    (s) =>
      (c.api.tokens = s
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean)),
  );
  v('NT_DATABASE_PATH', (s) => (c.database.path = s));
  v('NT_DATABASE_URL', (s) => (c.database.url = s));
  const n = (c.notifications ??= notificationDefaults());
  v('NT_NOTIFICATION_DRIVER', (s) => (n.driver = s as NonNullable<Config['notifications']>['driver']));
  v('NT_NOTIFICATION_TRANSPORT_URL', (s) => (n.transport_url = s));
}

function merge(base: Config, file: unknown): Config {
  if (file === null || typeof file !== 'object' || Array.isArray(file)) {
    throw new ConfigError('config file: expected a JSON object');
  }
  const f = file as Record<string, unknown>;
  const out = structuredClone(base) as Config & Record<string, unknown>;
  for (const [k, val] of Object.entries(f)) {
    const cur = out[k];
    if (cur && typeof cur === 'object' && !Array.isArray(cur) && val && typeof val === 'object') {
      out[k] = { ...(cur as object), ...(val as object) };
    } else {
      out[k] = val;
    }
  }
  return out;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let config = defaults();
  const file = env.NT_CONFIG;
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    config = merge(config, parsed);
  }
  applyEnv(config as Config & Record<string, unknown>, env);
  const result = configSchema.strict().safeParse(config);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigError(`config ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return result.data;
}
