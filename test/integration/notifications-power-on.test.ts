import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { connect, type ChannelModel } from 'amqplib';
import { notificationDefaults } from '../../src/notifications/index.js';
import { powerOnWorkflowId } from '../../src/workflows/definitions.js';
import { startStack, type TestStack } from '../support/stack.js';
import { repoRoot } from '../support/temporal-cli.js';

// A Nova notification consumer on RabbitMQ sees instance.power_on.start and .end
// for a power-on through the API, and .error for one that fails.

const rabbitmq = (command: 'start' | 'stop' | 'url') =>
  execFileSync('bash', [path.join(repoRoot, 'scripts/rabbitmq.sh'), command], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

let stack: TestStack;
let startedHere = false;
let consumer: ChannelModel;
const received: { routingKey: string; message: any }[] = [];

before(async () => {
  startedHere = /^NT_RABBITMQ_STARTED=1$/m.test(rabbitmq('start'));
  const url = rabbitmq('url').trim();
  consumer = await connect(url);
  const channel = await consumer.createChannel();
  await channel.assertExchange('nova', 'topic', { durable: false });
  const { queue } = await channel.assertQueue('', { exclusive: true, autoDelete: true });
  await channel.bindQueue(queue, 'nova', 'versioned_notifications.#');
  await channel.consume(queue, (msg) => {
    if (!msg) return;
    const envelope = JSON.parse(msg.content.toString('utf8'));
    received.push({ routingKey: msg.fields.routingKey, message: JSON.parse(envelope['oslo.message']) });
  });
  stack = await startStack({ notifications: { ...notificationDefaults(), driver: 'messagingv2', transport_url: url } });
});

after(async () => {
  await consumer?.close();
  if (stack) {
    for (const { uuid } of await stack.store.listInstances()) {
      const guest = await stack.host.getGuest(uuid);
      if (guest) {
        await guest.poweroff();
        await guest.deleteConfiguration();
      }
    }
    await stack.stop();
  }
  if (startedHere) rabbitmq('stop');
});

async function powerOn(flavor: { vcpus: number; ram: number; disk: number }): Promise<string> {
  const id = randomUUID();
  const reg = await stack.api('POST', '/servers', {
    server: { id, name: 'notified', flavor, imageRef: stack.imageId },
  });
  assert.equal(reg.status, 201);
  assert.equal((await stack.api('POST', `/servers/${id}/action`, { 'os-start': null })).status, 202);
  await stack.env.client.workflow
    .getHandle(powerOnWorkflowId(id))
    .result()
    .catch(() => undefined);
  return id;
}

async function notificationsOf(id: string, n: number) {
  for (let i = 0; i < 100; i++) {
    const mine = received.filter((r) => r.message.payload['nova_object.data'].uuid === id);
    if (mine.length >= n) return mine;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`fewer than ${n} notifications for ${id}`);
}

test('a power-on publishes instance.power_on.start and .end', async () => {
  const id = await powerOn({ vcpus: 1, ram: 64, disk: 1 });
  const [start, end] = await notificationsOf(id, 2);
  assert.equal(start!.message.event_type, 'instance.power_on.start');
  assert.equal(start!.routingKey, 'versioned_notifications.info');
  assert.equal(start!.message.payload['nova_object.name'], 'InstanceActionPayload');
  assert.equal(start!.message.payload['nova_object.data'].task_state, 'powering-on');
  assert.equal(end!.message.event_type, 'instance.power_on.end');
  assert.equal(end!.message.payload['nova_object.data'].state, 'active');
  assert.equal(end!.message.payload['nova_object.data'].power_state, 'running');
  assert.equal(end!.message.publisher_id, `nova-compute:${stack.config.host}`);
});

test('a failed power-on publishes instance.power_on.error with the fault', async () => {
  const id = await powerOn({ vcpus: 4096, ram: 64, disk: 1 });
  const [start, error] = await notificationsOf(id, 2);
  assert.equal(start!.message.event_type, 'instance.power_on.start');
  assert.equal(error!.message.event_type, 'instance.power_on.error');
  assert.equal(error!.message.priority, 'ERROR');
  assert.equal(error!.routingKey, 'versioned_notifications.error');
  const fault = error!.message.payload['nova_object.data'].fault['nova_object.data'];
  assert.equal(fault.exception, 'DomainXmlRejected');
  assert.equal(error!.message.payload['nova_object.data'].state, 'stopped');
});
