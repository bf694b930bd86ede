import { got, HTTPError, RequestError, type Got, type Method, type RetryFunction } from 'got';
import type { z } from 'zod';
import type { Logger } from '../log.js';
import { NeutronNotFound, NeutronRequestFailed, NeutronResponseInvalid, NeutronUnavailable } from './errors.js';
import * as s from './schemas.js';
import type { NeutronNetwork, NeutronPort, NeutronSecurityGroup, NeutronSubnet } from './schemas.js';

// Neutron API v2.0 client on got. Auth is a static X-Auth-Token or a Keystone v3
// password login (token from X-Subject-Token; one re-login on 401). Transient
// failures (refused/reset connections, timeouts, 502/503/504) are retried with
// backoff; 4xx never are. Every answer is size-capped, parsed and validated.

export interface KeystonePasswordAuth {
  /** Keystone endpoint, e.g. http://keystone:5000 (a trailing /v3 is accepted). */
  authUrl: string;
  username: string;
  password: string;
  userDomainName?: string;
  projectName: string;
  projectDomainName?: string;
}

export interface NeutronClientOptions {
  /** Endpoint root, e.g. http://127.0.0.1:9696 (a trailing /v2.0 is accepted). */
  url: string;
  auth: { token: string } | { keystone: KeystonePasswordAuth };
  /** Per attempt; default 10 s. */
  timeoutMs?: number;
  /** Retries of a transient failure; default 3. */
  retryLimit?: number;
  /** Ceiling of the exponential backoff; default 2 s. */
  backoffLimitMs?: number;
  /** Larger answers are refused; default 4 MiB. */
  maxResponseBytes?: number;
  logger?: Logger;
}

export type PortFilter = {
  device_id?: string;
  network_id?: string;
  id?: string[];
  /** port-security-groups-filtering extension */
  security_groups?: string[];
};

/** The fields Nova's allocate_for_instance and our tooling change on a port. */
export interface PortUpdate {
  device_id?: string;
  device_owner?: string;
  'binding:host_id'?: string | null;
  admin_state_up?: boolean;
  name?: string;
}

export interface NetworkCreate {
  name?: string;
  admin_state_up?: boolean;
  mtu?: number;
}

export interface SubnetCreate {
  network_id: string;
  cidr: string;
  ip_version: 4 | 6;
  name?: string;
  gateway_ip?: string | null;
  enable_dhcp?: boolean;
}

export interface PortCreate {
  network_id: string;
  name?: string;
  mac_address?: string;
  fixed_ips?: { subnet_id?: string; ip_address?: string }[];
  security_groups?: string[];
  port_security_enabled?: boolean;
  allowed_address_pairs?: { ip_address: string; mac_address?: string }[];
  admin_state_up?: boolean;
  device_id?: string;
  device_owner?: string;
  [extra: string]: unknown;
}

export interface SecurityGroupRuleCreate {
  security_group_id: string;
  direction: 'ingress' | 'egress';
  ethertype?: 'IPv4' | 'IPv6';
  protocol?: string | null;
  port_range_min?: number | null;
  port_range_max?: number | null;
  remote_ip_prefix?: string | null;
  remote_group_id?: string | null;
}

const TRANSIENT_STATUS = new Set([502, 503, 504]);
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENETUNREACH']);
const ID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const TOKEN_RE = /^[\x21-\x7e]{1,16384}$/;

type Query = Record<string, string | string[] | undefined>;

interface Call<S extends z.ZodType | null> {
  method: Method;
  path: string;
  schema: S;
  json?: unknown;
  query?: Query;
  headers?: Record<string, string>;
}

function checkId(kind: string, id: string): string {
  if (!ID_RE.test(id)) throw new TypeError(`invalid ${kind} id ${JSON.stringify(id.slice(0, 64))}: must be a UUID`);
  return id.toLowerCase();
}

function searchParams(query: Query | undefined): URLSearchParams | undefined {
  if (!query) return undefined;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) params.append(k, one);
  }
  return params;
}

/** Neutron's own words from a {"NeutronError": ...} body, printable and bounded. */
function neutronErrorOf(body: unknown): { type: string | null; message: string } {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = null;
    }
  }
  const e = s.neutronErrorBody.safeParse(parsed);
  const clean = (t: string | undefined) => (t ?? '').replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
  if (!e.success) return { type: null, message: typeof body === 'string' ? clean(body) : '' };
  const type = clean(e.data.NeutronError.type);
  return { type: /^[A-Za-z][A-Za-z0-9_]*$/.test(type) ? type : null, message: clean(e.data.NeutronError.message) };
}

/** JSON text -> validated value, or NeutronResponseInvalid naming the first offending field. */
export function parseAnswer<S extends z.ZodType>(request: string, schema: S, text: string): z.output<S> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new NeutronResponseInvalid(request, '(body)', 'is not JSON');
  }
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new NeutronResponseInvalid(request, s.fieldPath(issue.path), issue.message);
  }
  return result.data;
}

export class NeutronClient {
  private readonly http: Got;
  private readonly root: string;
  private readonly maxBytes: number;
  private token: Promise<string> | null = null;

  constructor(private readonly opts: NeutronClientOptions) {
    this.root = opts.url.replace(/\/+$/, '').replace(/\/v2\.0$/, '');
    this.maxBytes = opts.maxResponseBytes ?? 4 * 1024 * 1024;
    const limit = opts.retryLimit ?? 3;
    const backoffLimit = opts.backoffLimitMs ?? 2000;
    const calculateDelay: RetryFunction = ({ attemptCount, error }) => {
      if (attemptCount > limit || error.name === 'CancelError') return 0;
      // A refused connection never reached Neutron: safe to repeat even a POST.
      const idempotent = error.options.method !== 'POST';
      const status = error.response?.statusCode;
      const transient =
        status !== undefined
          ? idempotent && TRANSIENT_STATUS.has(status)
          : error.code === 'ECONNREFUSED' || (idempotent && TRANSIENT_CODES.has(error.code));
      if (!transient) return 0;
      return Math.min(250 * 2 ** (attemptCount - 1), backoffLimit) + Math.random() * 100;
    };
    this.http = got.extend({
      timeout: { request: opts.timeoutMs ?? 10_000 },
      retry: { limit, calculateDelay, enforceRetryRules: false },
      decompress: false,
      followRedirect: false,
      responseType: 'text',
      headers: { accept: 'application/json', 'user-agent': 'nova-temporal' },
    });
  }

  // ---- ports -------------------------------------------------------------

  async listPorts(filter: PortFilter): Promise<NeutronPort[]> {
    const body = await this.call({ method: 'GET', path: 'ports', schema: s.portsBody, query: filter });
    return body.ports;
  }

  async showPort(id: string): Promise<NeutronPort> {
    const path = `ports/${checkId('port', id)}`;
    return (await this.call({ method: 'GET', path, schema: s.portBody })).port;
  }

  /** `ifRevision`: Neutron's revision-if-match; a port changed meanwhile is a 412. */
  async updatePort(id: string, fields: PortUpdate, opts: { ifRevision?: number } = {}): Promise<NeutronPort> {
    const path = `ports/${checkId('port', id)}`;
    const headers: Record<string, string> = {};
    if (opts.ifRevision !== undefined) headers['if-match'] = `revision_number=${opts.ifRevision}`;
    return (await this.call({ method: 'PUT', path, schema: s.portBody, json: { port: fields }, headers })).port;
  }

  async createPort(fields: PortCreate): Promise<NeutronPort> {
    return (await this.call({ method: 'POST', path: 'ports', schema: s.portBody, json: { port: fields } })).port;
  }

  async deletePort(id: string): Promise<void> {
    await this.call({ method: 'DELETE', path: `ports/${checkId('port', id)}`, schema: null });
  }

  // ---- networks and subnets ----------------------------------------------

  async showNetwork(id: string): Promise<NeutronNetwork> {
    const path = `networks/${checkId('network', id)}`;
    return (await this.call({ method: 'GET', path, schema: s.networkBody })).network;
  }

  async listNetworks(filter: { id?: string[]; name?: string } = {}): Promise<NeutronNetwork[]> {
    return (await this.call({ method: 'GET', path: 'networks', schema: s.networksBody, query: filter })).networks;
  }

  async createNetwork(fields: NetworkCreate = {}): Promise<NeutronNetwork> {
    const json = { network: fields };
    return (await this.call({ method: 'POST', path: 'networks', schema: s.networkBody, json })).network;
  }

  async deleteNetwork(id: string): Promise<void> {
    await this.call({ method: 'DELETE', path: `networks/${checkId('network', id)}`, schema: null });
  }

  async listSubnets(filter: { network_id?: string; id?: string[] }): Promise<NeutronSubnet[]> {
    return (await this.call({ method: 'GET', path: 'subnets', schema: s.subnetsBody, query: filter })).subnets;
  }

  async showSubnet(id: string): Promise<NeutronSubnet> {
    const path = `subnets/${checkId('subnet', id)}`;
    return (await this.call({ method: 'GET', path, schema: s.subnetBody })).subnet;
  }

  async createSubnet(fields: SubnetCreate): Promise<NeutronSubnet> {
    const json = { subnet: fields };
    return (await this.call({ method: 'POST', path: 'subnets', schema: s.subnetBody, json })).subnet;
  }

  async deleteSubnet(id: string): Promise<void> {
    await this.call({ method: 'DELETE', path: `subnets/${checkId('subnet', id)}`, schema: null });
  }

  // ---- security groups ---------------------------------------------------

  /** Groups with their rules (security_group_rules). */
  async listSecurityGroups(filter: { id?: string[]; name?: string } = {}): Promise<NeutronSecurityGroup[]> {
    const body = await this.call({
      method: 'GET',
      path: 'security-groups',
      schema: s.securityGroupsBody,
      query: filter,
    });
    return body.security_groups;
  }

  async showSecurityGroup(id: string): Promise<NeutronSecurityGroup> {
    const path = `security-groups/${checkId('security group', id)}`;
    return (await this.call({ method: 'GET', path, schema: s.securityGroupBody })).security_group;
  }

  async createSecurityGroup(fields: { name: string; description?: string }): Promise<NeutronSecurityGroup> {
    const json = { security_group: fields };
    return (await this.call({ method: 'POST', path: 'security-groups', schema: s.securityGroupBody, json }))
      .security_group;
  }

  async createSecurityGroupRule(fields: SecurityGroupRuleCreate) {
    const json = { security_group_rule: fields };
    const path = 'security-group-rules';
    return (await this.call({ method: 'POST', path, schema: s.securityGroupRuleBody, json })).security_group_rule;
  }

  // ---- transport ---------------------------------------------------------

  private async call<S extends z.ZodType | null>(c: Call<S>): Promise<S extends z.ZodType ? z.output<S> : void> {
    const label = `${c.method} /v2.0/${c.path}`;
    let text: string;
    try {
      text = await this.send(c, label, await this.currentToken());
    } catch (err) {
      if (!(err instanceof HTTPError && err.response.statusCode === 401 && 'keystone' in this.opts.auth)) {
        throw this.translate(err, label);
      }
      // An expired or revoked Keystone token: log in again, once.
      this.token = null;
      try {
        text = await this.send(c, label, await this.currentToken());
      } catch (again) {
        throw this.translate(again, label);
      }
    }
    if (c.schema === null) return undefined as never;
    return parseAnswer(label, c.schema, text) as never;
  }

  private async send(c: Call<z.ZodType | null>, label: string, token: string): Promise<string> {
    const started = Date.now();
    const request = this.http(`${this.root}/v2.0/${c.path}`, {
      method: c.method,
      headers: { ...c.headers, 'x-auth-token': token },
      searchParams: searchParams(c.query),
      json: c.json,
    });
    const response = await this.capped(request, label);
    this.opts.logger?.debug(
      { request: label, status: response.statusCode, ms: Date.now() - started, retries: response.retryCount },
      'neutron request',
    );
    return response.body;
  }

  /** Cancels a download past maxResponseBytes (declared or actual) instead of buffering it. */
  private async capped<T extends { body: string }>(
    request: Promise<T> & {
      on(e: 'downloadProgress', f: (p: { transferred: number; total?: number }) => void): unknown;
      cancel(): void;
    },
    label: string,
  ): Promise<T> {
    let tooLarge = false;
    request.on('downloadProgress', (p) => {
      if (!tooLarge && (p.transferred > this.maxBytes || (p.total !== undefined && p.total > this.maxBytes))) {
        tooLarge = true;
        request.cancel();
      }
    });
    try {
      return await request;
    } catch (err) {
      if (tooLarge) throw new NeutronResponseInvalid(label, '(body)', `is larger than ${this.maxBytes} bytes`);
      throw err;
    }
  }

  private translate(err: unknown, label: string): Error {
    if (err instanceof NeutronResponseInvalid) return err;
    if (err instanceof HTTPError) {
      const status = err.response.statusCode;
      const { type, message } = neutronErrorOf(err.response.body);
      if (status === 404) return new NeutronNotFound(label, type, message);
      if (status >= 500) return new NeutronUnavailable(label, `HTTP ${status} ${message}`.trim(), { cause: err });
      return new NeutronRequestFailed(label, status, type, message);
    }
    if (err instanceof RequestError) {
      return new NeutronUnavailable(label, err.code ? `${err.code}: ${err.message}` : err.message, { cause: err });
    }
    return err instanceof Error ? err : new Error(String(err));
  }

  // ---- auth --------------------------------------------------------------

  private currentToken(): Promise<string> {
    if ('token' in this.opts.auth) return Promise.resolve(this.opts.auth.token);
    // One login in flight at a time; a failed login is not cached.
    this.token ??= this.login(this.opts.auth.keystone).catch((err: unknown) => {
      this.token = null;
      throw err;
    });
    return this.token;
  }

  private async login(k: KeystonePasswordAuth): Promise<string> {
    const url = `${k.authUrl.replace(/\/+$/, '').replace(/\/v3$/, '')}/v3/auth/tokens`;
    const label = 'POST keystone /v3/auth/tokens';
    const body = {
      auth: {
        identity: {
          methods: ['password'],
          password: {
            user: { name: k.username, domain: { name: k.userDomainName ?? 'Default' }, password: k.password },
          },
        },
        scope: { project: { name: k.projectName, domain: { name: k.projectDomainName ?? 'Default' } } },
      },
    };
    let response;
    try {
      response = await this.capped(this.http(url, { method: 'POST', json: body }), label);
    } catch (err) {
      if (err instanceof HTTPError && err.response.statusCode === 401) {
        throw new NeutronRequestFailed(label, 401, null, 'Keystone refused the credentials');
      }
      throw this.translate(err, label);
    }
    const token = response.headers['x-subject-token'];
    if (typeof token !== 'string' || !TOKEN_RE.test(token)) {
      throw new NeutronResponseInvalid(label, 'X-Subject-Token', 'must be a printable token header');
    }
    this.opts.logger?.info({ authUrl: k.authUrl, user: k.username }, 'keystone token obtained');
    return token;
  }
}
