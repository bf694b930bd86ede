import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, type Channel, type ChannelModel, type ConsumeMessage } from 'amqplib';
import { AmqpNotifier, AmqpPublishError } from '../../src/notifications/amqp-notifier.js';
import { messageIdFor } from '../../src/notifications/payload.js';
import type { NotificationInstance } from '../../src/notifications/types.js';

// A real RabbitMQ (scripts/rabbitmq.sh: Debian's rabbitmq-server, started
// without systemd if it is not running) and a consumer bound to the `nova`
// exchange with versioned_notifications.#, as a Nova notification consumer
// binds. Only what this test started is stopped afterwards.

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const script = path.join(repoRoot, 'scripts/rabbitmq.sh');

function rabbitmq(command: 'start' | 'stop' | 'url'): string {
  try {
    return execFileSync('bash', [script, command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; status?: number };
    throw new Error(`scripts/rabbitmq.sh ${command} failed (exit ${e.status}): ${e.stderr ?? ''}`);
  }
}

interface Received {
  routingKey: string;
  exchange: string;
  contentType: string | undefined;
  envelope: Record<string, unknown>;
  message: any;
}

/** A TCP relay to the broker that the test can cut and restore: a broker outage without touching the broker. */
class Relay {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async up(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /** Stop accepting and cut every open connection, as a broker that died would. */
  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('AmqpNotifier against RabbitMQ', () => {
  let startedHere = false;
  let url = '';
  let consumerConn: ChannelModel | undefined;
  let consumer: Channel | undefined;
  const received: Received[] = [];
  const waiters: (() => void)[] = [];
  const createdDefaultQueues: string[] = [];
  const notifiers: AmqpNotifier[] = [];
  const logLines: string[] = [];
  const logger = {
    info: (o: unknown, m?: string) => logLines.push(JSON.stringify([o, m])),
    warn: (o: unknown, m?: string) => logLines.push(JSON.stringify([o, m])),
  } as any;

  const instance = (over: Partial<NotificationInstance> = {}): NotificationInstance => ({
    uuid: randomUUID(),
    name: 'notif-test',
    host: 'compute-test',
    flavor: { vcpus: 1, ramMb: 256, diskGb: 1 },
    imageRef: randomUUID(),
    vmState: 'stopped',
    taskState: 'powering-on',
    powerState: 4,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
    ...over,
  });

  /** The messages for this instance, waiting until there are n of them. */
  async function messagesFor(uuid: string, n: number, timeoutMs = 10_000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const mine = received.filter((r) => r.message?.payload?.['nova_object.data']?.uuid === uuid);
      if (mine.length >= n) return mine;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`got ${mine.length} of ${n} notifications for ${uuid}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  before(
    async () => {
      const out = rabbitmq('start');
      startedHere = /^NT_RABBITMQ_STARTED=1$/m.test(out);
      url = rabbitmq('url').trim();

      consumerConn = await connect(url);
      // Which of oslo's default queues exist already: those we make, we remove.
      for (const q of ['versioned_notifications.info', 'versioned_notifications.error']) {
        const probe = await consumerConn.createChannel();
        probe.on('error', () => undefined);
        try {
          await probe.checkQueue(q);
          await probe.close();
        } catch {
          createdDefaultQueues.push(q);
        }
      }
      consumer = await consumerConn.createChannel();
      // The same declaration as oslo.messaging's (and our notifier's): topic, not durable.
      await consumer.assertExchange('nova', 'topic', { durable: false, autoDelete: false });
      const { queue } = await consumer.assertQueue('', { exclusive: true, autoDelete: true });
      await consumer.bindQueue(queue, 'nova', 'versioned_notifications.#');
      await consumer.consume(
        queue,
        (msg: ConsumeMessage | null) => {
          if (!msg) return;
          const envelope = JSON.parse(msg.content.toString('utf8')) as Record<string, unknown>;
          received.push({
            routingKey: msg.fields.routingKey,
            exchange: msg.fields.exchange,
            contentType: msg.properties.contentType as string | undefined,
            envelope,
            message: typeof envelope['oslo.message'] === 'string' ? JSON.parse(envelope['oslo.message']) : null,
          });
          for (const w of waiters.splice(0)) w();
        },
        { noAck: true },
      );
    },
    { timeout: 300_000 },
  );

  after(
    async () => {
      try {
        for (const n of notifiers) await n.close();
        if (consumerConn) {
          if (createdDefaultQueues.length > 0) {
            const ch = await consumerConn.createChannel();
            for (const q of createdDefaultQueues) await ch.deleteQueue(q).catch(() => undefined);
          }
          await consumerConn.close();
        }
      } finally {
        // Only a broker this test started; one that was already running stays up.
        if (startedHere) rabbitmq('stop');
      }
    },
    { timeout: 120_000 },
  );

  test('start, end and error arrive in the oslo envelope with the right key, priority and payload', async (t) => {
    const notifier = new AmqpNotifier({ url, logger });
    notifiers.push(notifier);
    const requestId = `req-${randomUUID()}`;
    const starting = instance();
    const { uuid } = starting;
    const t0 = performance.now();
    await notifier.notify('instance.power_on.start', starting, { requestId });
    const firstMs = performance.now() - t0;
    const t1 = performance.now();
    await notifier.notify(
      'instance.power_on.end',
      { ...starting, vmState: 'active', taskState: null, powerState: 1 },
      {
        requestId,
      },
    );
    const confirmedMs = performance.now() - t1;
    await notifier.notify(
      'instance.power_on.error',
      { ...starting, vmState: 'stopped', taskState: null, powerState: 4 },
      {
        requestId,
        fault: { exception: 'VirtualInterfaceCreateException', message: 'vif plugging failed', functionName: 'x' },
      },
    );
    const got = await messagesFor(uuid, 3);
    t.diagnostic(
      `first notify (connect + declare + confirm) ${firstMs.toFixed(1)} ms, next ${confirmedMs.toFixed(1)} ms`,
    );

    const byType = new Map(got.map((r) => [r.message.event_type as string, r]));
    assert.deepEqual([...byType.keys()].sort(), [
      'instance.power_on.end',
      'instance.power_on.error',
      'instance.power_on.start',
    ]);
    for (const r of got) {
      assert.equal(r.exchange, 'nova');
      assert.equal(r.contentType, 'application/json');
      assert.deepEqual(Object.keys(r.envelope).sort(), ['oslo.message', 'oslo.version']);
      assert.equal(r.envelope['oslo.version'], '2.0');
      assert.equal(typeof r.envelope['oslo.message'], 'string');
      assert.equal(r.message.publisher_id, 'nova-compute:compute-test');
      assert.equal(r.message.payload['nova_object.name'], 'InstanceActionPayload');
      assert.equal(r.message.payload['nova_object.version'], '1.9');
      assert.equal(r.message.payload['nova_object.data'].request_id, requestId);
      assert.equal(r.message.message_id, messageIdFor(r.message.event_type, uuid, requestId));
      assert.match(r.message.timestamp, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{6})?$/);
    }
    const start = byType.get('instance.power_on.start')!;
    assert.equal(start.routingKey, 'versioned_notifications.info');
    assert.equal(start.message.priority, 'INFO');
    assert.equal(start.message.payload['nova_object.data'].state, 'stopped');
    assert.equal(start.message.payload['nova_object.data'].task_state, 'powering-on');
    assert.equal(start.message.payload['nova_object.data'].power_state, 'shutdown');
    assert.equal(start.message.payload['nova_object.data'].fault, null);

    const end = byType.get('instance.power_on.end')!;
    assert.equal(end.routingKey, 'versioned_notifications.info');
    assert.equal(end.message.priority, 'INFO');
    assert.equal(end.message.payload['nova_object.data'].state, 'active');
    assert.equal(end.message.payload['nova_object.data'].task_state, null);
    assert.equal(end.message.payload['nova_object.data'].power_state, 'running');

    const error = byType.get('instance.power_on.error')!;
    assert.equal(error.routingKey, 'versioned_notifications.error');
    assert.equal(error.message.priority, 'ERROR');
    const fault = error.message.payload['nova_object.data'].fault;
    assert.equal(fault['nova_object.name'], 'ExceptionPayload');
    assert.equal(fault['nova_object.data'].exception, 'VirtualInterfaceCreateException');
    assert.equal(fault['nova_object.data'].exception_message, 'vif plugging failed');

    // Like oslo, the notifier declared the default queues, bound to the exchange.
    const ch = await consumerConn!.createChannel();
    await ch.checkQueue('versioned_notifications.info');
    await ch.checkQueue('versioned_notifications.error');
    await ch.close();

    const password = new URL(url).password;
    assert.ok(logLines.length > 0);
    assert.ok(
      logLines.every((l) => !l.includes(password)),
      'the broker password is never logged',
    );
  });

  test('a broker outage makes notify reject; afterwards it reconnects by itself', async (t) => {
    const broker = new URL(url);
    const relay = new Relay(broker.hostname, Number(broker.port || 5672));
    await relay.up();
    const relayed = new URL(url);
    relayed.port = String(relay.port);
    const notifier = new AmqpNotifier({ url: relayed.toString(), logger, connectTimeoutMs: 2000 });
    notifiers.push(notifier);
    const requestId = `req-${randomUUID()}`;
    const inst = instance();

    await notifier.notify('instance.power_on.start', inst, { requestId });
    await relay.down();
    const t0 = performance.now();
    await assert.rejects(
      notifier.notify(
        'instance.power_on.end',
        { ...inst, vmState: 'active', taskState: null, powerState: 1 },
        {
          requestId,
        },
      ),
      AmqpPublishError,
    );
    const rejectMs = performance.now() - t0;
    await relay.up(); // same port: the broker is back
    await notifier.notify(
      'instance.power_on.end',
      { ...inst, vmState: 'active', taskState: null, powerState: 1 },
      {
        requestId,
      },
    );
    const got = await messagesFor(inst.uuid, 2);
    t.diagnostic(`notify while the broker is unreachable rejected in ${rejectMs.toFixed(1)} ms`);
    assert.deepEqual(got.map((r) => r.message.event_type).sort(), ['instance.power_on.end', 'instance.power_on.start']);

    // The connection dies between two notifications (broker restart): the next
    // notify notices, reconnects once and succeeds without an error to the caller.
    await relay.down();
    await relay.up();
    await notifier.notify(
      'instance.power_on.error',
      { ...inst, vmState: 'stopped', taskState: null },
      { requestId, fault: { exception: 'E', message: 'm' } },
    );
    await messagesFor(inst.uuid, 3);
    await notifier.close();
    await relay.down();
  });
});
