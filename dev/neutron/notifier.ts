import { randomUUID } from 'node:crypto';
import { got } from 'got';
import type { Logger } from '../../src/log.js';
import type { PortRow, PortStatus } from './state.js';

// Neutron's nova notifier (neutron/notifiers/nova.py): which port changes become
// Nova external events, and the request that carries them to
// POST <nova>/v2.1/os-server-external-events. Events of one tick go in one request,
// as Neutron batches them; nothing is retried (an answered error loses the event).

export interface NovaEvent {
  server_uuid: string;
  name: 'network-vif-plugged' | 'network-vif-unplugged' | 'network-vif-deleted';
  status?: 'completed' | 'failed';
  tag: string;
}

export interface SentBatch {
  id: number;
  time: string;
  requestId: string | null;
  events: NovaEvent[];
  /** The HTTP status Nova answered, or null when the request did not get an answer. */
  statusCode: number | null;
  error: string | null;
  response: unknown;
}

const UUID_LIKE = /^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$/;

/** _is_compute_port: a uuid-like device_id and a compute:* owner. */
export function isComputePort(p: Pick<PortRow, 'device_id' | 'device_owner'>): boolean {
  return UUID_LIKE.test(p.device_id) && p.device_owner.startsWith('compute:');
}

const EVENT_STATUS: Partial<Record<PortStatus, 'completed' | 'failed'>> = {
  ACTIVE: 'completed',
  ERROR: 'failed',
  DOWN: 'completed',
};

/** record_port_status_changed: ACTIVE->DOWN is unplugged; DOWN/BUILD->ACTIVE/ERROR is plugged. */
export function statusChangeEvent(port: PortRow, previous: PortStatus, current: PortStatus): NovaEvent | null {
  if (!isComputePort(port)) return null;
  let name: NovaEvent['name'];
  if (previous === 'ACTIVE' && current === 'DOWN') name = 'network-vif-unplugged';
  else if ((previous === 'DOWN' || previous === 'BUILD') && (current === 'ACTIVE' || current === 'ERROR')) {
    name = 'network-vif-plugged';
  } else return null;
  return { server_uuid: port.device_id, name, status: EVENT_STATUS[current]!, tag: port.id };
}

/** The plugged event of a port that has not (yet) been wired: notify_port_active_direct's shape. */
export function pluggedEvent(port: PortRow): NovaEvent | null {
  if (!isComputePort(port)) return null;
  return { server_uuid: port.device_id, name: 'network-vif-plugged', status: 'completed', tag: port.id };
}

export function deletedEvent(port: PortRow): NovaEvent | null {
  if (!isComputePort(port)) return null;
  return { server_uuid: port.device_id, name: 'network-vif-deleted', tag: port.id };
}

/** json.dumps with Python's defaults (", " and ": " separators, ASCII only), as novaclient sends it. */
export function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${pythonJson(k)}: ${pythonJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value).replace(
    /[\u0080-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

export interface NovaNotifierOptions {
  /** The control plane's /v2.1 base; null: events are recorded, not sent. */
  apiUrl: string | null;
  apiToken: string | null;
  logger: Logger;
  timeoutMs?: number;
  /** How many sent batches GET /dev/events keeps. */
  keep?: number;
}

export class NovaNotifier {
  private queue: NovaEvent[] = [];
  private flushScheduled = false;
  private readonly sent: SentBatch[] = [];
  private nextId = 1;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: NovaNotifierOptions) {}

  send(event: NovaEvent | null): void {
    if (!event) return;
    this.queue.push(event);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const batch = this.queue;
      this.queue = [];
      // One request at a time, in order, like Neutron's batch notifier.
      this.chain = this.chain.then(() => this.post(batch));
    });
  }

  history(): SentBatch[] {
    return [...this.sent];
  }

  clear(): void {
    this.sent.length = 0;
  }

  /** Resolves when everything queued so far has been sent (or failed). */
  async drain(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    await this.chain;
  }

  private record(b: Omit<SentBatch, 'id' | 'time'>): void {
    this.sent.push({ id: this.nextId++, time: new Date().toISOString(), ...b });
    if (this.sent.length > (this.opts.keep ?? 1000)) this.sent.shift();
  }

  private async post(events: NovaEvent[]): Promise<void> {
    const { apiUrl, apiToken, logger } = this.opts;
    if (!apiUrl) {
      this.record({ requestId: null, events, statusCode: null, error: 'no NT_API_URL configured', response: null });
      return;
    }
    const requestId = `req-${randomUUID()}`;
    try {
      const res = await got.post(`${apiUrl.replace(/\/+$/, '')}/os-server-external-events`, {
        body: pythonJson({ events }),
        headers: {
          'User-Agent': 'python-novaclient',
          Accept: 'application/json',
          'Content-Type': 'application/json',
          'X-Auth-Token': apiToken ?? '',
          'X-OpenStack-Nova-API-Version': '2.1',
          'X-OpenStack-Request-ID': requestId,
        },
        retry: { limit: 0 },
        timeout: { request: this.opts.timeoutMs ?? 10_000 },
        throwHttpErrors: false,
        decompress: false,
        followRedirect: false,
        responseType: 'text',
      });
      let response: unknown = res.body.slice(0, 64 * 1024);
      try {
        response = JSON.parse(res.body);
      } catch {
        // keep the text
      }
      this.record({ requestId, events, statusCode: res.statusCode, error: null, response });
      const log = res.statusCode < 300 ? logger.info.bind(logger) : logger.warn.bind(logger);
      log({ requestId, events, status: res.statusCode }, 'nova notified');
    } catch (err) {
      const message = (err as Error).message;
      this.record({ requestId, events, statusCode: null, error: message, response: null });
      logger.error({ requestId, events, err: message }, 'failed to notify nova on events');
    }
  }
}
