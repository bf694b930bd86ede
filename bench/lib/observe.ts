import dc from 'node:diagnostics_channel';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import type { ClientRequest } from 'node:http';
import { Connection, VIR_DOMAIN_EVENT_RESUMED, VIR_DOMAIN_EVENT_STARTED } from '@nova-temporal/libvirt';
import { wall } from './util.js';

// What the bench observes from outside the code under test: libvirt lifecycle
// events (when a guest really runs) and the moment the Neutron dev server's nova
// notifier sends each os-server-external-events POST.

export interface Lifecycle {
  event: number;
  detail: number;
  at: number;
}

/** Lifecycle events of the bench's own domains, timestamped when they reach JS (~3 ms after the fact, DESIGN 8). */
export class LifecycleWatch {
  private readonly events = new Map<string, Lifecycle[]>();
  private readonly waiters = new Map<string, { pred: (e: Lifecycle) => boolean; resolve: (e: Lifecycle) => void }[]>();
  private readonly watched = new Set<string>();
  /** nice value given to a bench guest's QEMU threads when it starts (null: left alone) */
  guestNice: number | null = null;
  reniced = 0;

  private constructor(private readonly conn: Connection) {
    conn.onLifecycleEvent((ev) => {
      if (!this.watched.has(ev.uuid)) return;
      const e = { event: ev.event, detail: ev.detail, at: wall() };
      if (ev.event === VIR_DOMAIN_EVENT_STARTED && this.guestNice !== null) this.renice(ev.name, this.guestNice);
      let list = this.events.get(ev.uuid);
      if (!list) this.events.set(ev.uuid, (list = []));
      list.push(e);
      const ws = this.waiters.get(ev.uuid) ?? [];
      for (let i = ws.length - 1; i >= 0; i--) {
        if (ws[i]!.pred(e)) {
          ws[i]!.resolve(e);
          ws.splice(i, 1);
        }
      }
    });
  }

  static async open(uri: string): Promise<LifecycleWatch> {
    return new LifecycleWatch(await Connection.open(uri));
  }

  /**
   * Lowers the CPU priority of every thread of the guest's QEMU (libvirt's pid
   * file names the process; its vCPU threads exist once libvirt reports it
   * started). Only the guest's own work is affected: libvirtd and the
   * power-on path keep theirs.
   */
  private renice(domainName: string, nice: number, count = true): void {
    try {
      const pid = Number(readFileSync(`/run/libvirt/qemu/${domainName}.pid`, 'utf8').trim());
      // QEMU runs in its own session: with autogroup scheduling (on here) the group's nice is what counts.
      writeFileSync(`/proc/${pid}/autogroup`, String(nice));
      for (const tid of readdirSync(`/proc/${pid}/task`)) os.setPriority(Number(tid), nice);
      if (count) this.reniced++;
    } catch {
      // gone already: nothing to lower
    }
  }

  /** Gives a guest its normal priority back, so that it exits promptly when destroyed. */
  restorePriority(domainName: string): void {
    if (this.guestNice !== null) this.renice(domainName, 0, false);
  }

  watch(uuid: string): void {
    this.watched.add(uuid);
  }

  forget(uuid: string): void {
    this.watched.delete(uuid);
    this.events.delete(uuid);
    this.waiters.delete(uuid);
  }

  of(uuid: string): Lifecycle[] {
    return this.events.get(uuid) ?? [];
  }

  /** When the guest started running: RESUMED, or STARTED when it was not started paused. */
  runningAt(uuid: string, after = 0): number | null {
    const hit = this.of(uuid).find(
      (e) => e.at >= after && (e.event === VIR_DOMAIN_EVENT_RESUMED || e.event === VIR_DOMAIN_EVENT_STARTED),
    );
    if (!hit) return null;
    // A paused start reports STARTED then SUSPENDED: running is the RESUMED after it.
    const suspended = this.of(uuid).some((e) => e.at >= hit.at && e.event === 3);
    if (hit.event === VIR_DOMAIN_EVENT_STARTED && suspended) {
      return this.of(uuid).find((e) => e.at >= hit.at && e.event === VIR_DOMAIN_EVENT_RESUMED)?.at ?? null;
    }
    return hit.at;
  }

  next(uuid: string, pred: (e: Lifecycle) => boolean, timeoutMs: number): Promise<Lifecycle> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no lifecycle event for ${uuid} in ${timeoutMs} ms`)), timeoutMs);
      let ws = this.waiters.get(uuid);
      if (!ws) this.waiters.set(uuid, (ws = []));
      ws.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  close(): Promise<void> {
    return this.conn.close();
  }
}

export interface PostSeen {
  /** host:port the POST went to */
  target: string;
  requestId: string;
  /** wall() when the request was created (the notifier's got call) */
  sentAt: number;
  /** wall() when the response arrived */
  answeredAt: number | null;
}

/**
 * Timestamps every os-server-external-events POST this process sends (the
 * in-process Neutron dev servers' notifiers), keyed by X-OpenStack-Request-ID;
 * the notifier's own history maps that id to the events in the batch.
 */
export class PostTap {
  readonly posts = new Map<string, PostSeen>();
  private readonly byRequest = new WeakMap<ClientRequest, PostSeen>();
  private readonly onStart = (message: unknown) => {
    const request = (message as { request: ClientRequest }).request;
    if (request.method !== 'POST' || !request.path.endsWith('/os-server-external-events')) return;
    const requestId = String(request.getHeader('x-openstack-request-id') ?? '');
    const seen: PostSeen = {
      target: String(request.getHeader('host') ?? ''),
      requestId,
      sentAt: wall(),
      answeredAt: null,
    };
    this.posts.set(requestId, seen);
    this.byRequest.set(request, seen);
  };
  private readonly onFinish = (message: unknown) => {
    const seen = this.byRequest.get((message as { request: ClientRequest }).request);
    if (seen) seen.answeredAt = wall();
  };

  constructor() {
    dc.subscribe('http.client.request.start', this.onStart);
    dc.subscribe('http.client.response.finish', this.onFinish);
  }

  close(): void {
    dc.unsubscribe('http.client.request.start', this.onStart);
    dc.unsubscribe('http.client.response.finish', this.onFinish);
  }
}
