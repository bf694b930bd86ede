import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NetworkInfo } from '../../src/domain/network-model.js';
import { AmqpNotifier, AmqpPublishError } from '../../src/notifications/amqp-notifier.js';
import {
  createNotifier,
  notificationDefaults,
  notificationSettingsSchema,
  resolvedDriver,
} from '../../src/notifications/index.js';
import { LogNotifier } from '../../src/notifications/log-notifier.js';
import {
  osloEnvelope,
  osloMessage,
  parseTransportUrl,
  publishOptions,
  redactUrl,
  routingKey,
  TransportUrlError,
} from '../../src/notifications/oslo.js';
import {
  buildPowerOnNotification,
  ipPayloads,
  messageIdFor,
  novaDateTime,
  osloTimestamp,
  uuidV5,
} from '../../src/notifications/payload.js';
import { FanoutNotifier, NotifyFanoutError, StoreNotifier } from '../../src/notifications/store-notifier.js';
import type { NotificationInstance, Notifier } from '../../src/notifications/types.js';
import type { InstanceActionEvent } from '../../src/store/instance-store.js';

// Keys of Nova's samples, resolved through their $refs (openstack/nova
// doc/notification_samples at 00a030403f672b975364c855b7d25b40ef83e757):
// instance-power_on-start.json -> common_payloads/InstanceActionPayload.json
// -> InstancePayload.json, FlavorPayload.json, ExceptionPayload.json,
// IpPayload.json; instance-reboot-error.json for a fault.
const SAMPLE_TOP_LEVEL = ['event_type', 'payload', 'priority', 'publisher_id'];
// oslo.messaging's Notifier adds these two to every message (they are not in the samples).
const OSLO_ADDED = ['message_id', 'timestamp'];
const SAMPLE_INSTANCE_ACTION_DATA = [
  'action_initiator_project',
  'action_initiator_user',
  'architecture',
  'auto_disk_config',
  'availability_zone',
  'block_devices',
  'created_at',
  'deleted_at',
  'display_description',
  'display_name',
  'fault',
  'flavor',
  'host',
  'host_name',
  'image_uuid',
  'ip_addresses',
  'kernel_id',
  'key_name',
  'launched_at',
  'locked',
  'locked_reason',
  'metadata',
  'node',
  'os_type',
  'power_state',
  'progress',
  'ramdisk_id',
  'request_id',
  'reservation_id',
  'shares',
  'state',
  'task_state',
  'tenant_id',
  'terminated_at',
  'updated_at',
  'user_id',
  'uuid',
];
const SAMPLE_FLAVOR_DATA = [
  'description',
  'disabled',
  'ephemeral_gb',
  'extra_specs',
  'flavorid',
  'is_public',
  'memory_mb',
  'name',
  'projects',
  'root_gb',
  'rxtx_factor',
  'swap',
  'vcpu_weight',
  'vcpus',
];
const SAMPLE_EXCEPTION_DATA = ['exception', 'exception_message', 'function_name', 'module_name', 'traceback'];
const SAMPLE_IP_DATA = ['address', 'device_name', 'label', 'mac', 'meta', 'port_uuid', 'version'];
const NOVA_OBJECT_KEYS = ['nova_object.data', 'nova_object.name', 'nova_object.namespace', 'nova_object.version'];

const sorted = (o: object) => Object.keys(o).sort();

const UUID = '178b0921-8f85-4257-88b6-2e743b5a975c';
const REQ = 'req-5b6c791d-5709-4f36-8fbe-c3e02869e35d';
const NOW = new Date('2026-11-27T10:11:12.345Z');

function record(over: Partial<NotificationInstance> = {}): NotificationInstance {
  return {
    uuid: UUID,
    name: 'some-server',
    host: 'compute',
    flavor: { vcpus: 1, ramMb: 512, diskGb: 1 },
    imageRef: '155d900f-4e14-4e4c-a73d-069cbf4541e6',
    vmState: 'stopped',
    taskState: 'powering-on',
    powerState: 4,
    createdAt: '2012-10-29T13:42:11.123Z',
    updatedAt: '2012-10-29T13:42:12.000Z',
    ...over,
  };
}

const fault = {
  exception: 'VirtualInterfaceCreateException',
  message: 'Virtual Interface creation failed',
  functionName: 'waitForVifPlugged',
  moduleName: 'nova_temporal.workflows.power_on_instance',
  traceback: 'VirtualInterfaceCreateException: Virtual Interface creation failed\n    at ...',
};

describe('payload: Nova samples', () => {
  test('instance.power_on.start has the sample structure and the start sample overrides', () => {
    const n = buildPowerOnNotification({
      eventType: 'instance.power_on.start',
      instance: record(),
      requestId: REQ,
      now: NOW,
    });
    assert.deepEqual(sorted(n), [...SAMPLE_TOP_LEVEL, ...OSLO_ADDED].sort());
    assert.equal(n.event_type, 'instance.power_on.start');
    assert.equal(n.priority, 'INFO');
    assert.equal(n.publisher_id, 'nova-compute:compute');
    assert.deepEqual(sorted(n.payload), NOVA_OBJECT_KEYS);
    assert.equal(n.payload['nova_object.name'], 'InstanceActionPayload');
    assert.equal(n.payload['nova_object.namespace'], 'nova');
    assert.equal(n.payload['nova_object.version'], '1.9');
    const d = n.payload['nova_object.data'];
    assert.deepEqual(sorted(d), SAMPLE_INSTANCE_ACTION_DATA);
    // instance-power_on-start.json overrides these three of InstanceActionPayload.json.
    assert.equal(d.state, 'stopped');
    assert.equal(d.task_state, 'powering-on');
    assert.equal(d.power_state, 'shutdown');
    assert.equal(d.uuid, UUID);
    assert.equal(d.display_name, 'some-server');
    assert.equal(d.host, 'compute');
    assert.equal(d.image_uuid, '155d900f-4e14-4e4c-a73d-069cbf4541e6');
    assert.equal(d.request_id, REQ);
    assert.equal(d.fault, null);
    assert.equal(d.created_at, '2012-10-29T13:42:11Z');
    assert.equal(d.updated_at, '2012-10-29T13:42:12Z');
    assert.deepEqual(d.ip_addresses, []);
    assert.deepEqual(d.metadata, {});
    assert.equal(d.locked, false);
    assert.equal(d.auto_disk_config, 'MANUAL');
    assert.equal(n.timestamp, '2026-11-27 10:11:12.345000');
  });

  test('the flavor is a FlavorPayload 1.4 with our sizes', () => {
    const n = buildPowerOnNotification({
      eventType: 'instance.power_on.start',
      instance: record({ flavor: { vcpus: 2, ramMb: 2048, diskGb: 20 } }),
      requestId: REQ,
    });
    const flavor = n.payload['nova_object.data'].flavor;
    assert.deepEqual(sorted(flavor), NOVA_OBJECT_KEYS);
    assert.equal(flavor['nova_object.name'], 'FlavorPayload');
    assert.equal(flavor['nova_object.version'], '1.4');
    assert.deepEqual(sorted(flavor['nova_object.data']), SAMPLE_FLAVOR_DATA);
    const f = flavor['nova_object.data'];
    assert.equal(f.vcpus, 2);
    assert.equal(f.memory_mb, 2048);
    assert.equal(f.root_gb, 20);
    assert.equal(f.ephemeral_gb, 0);
    assert.equal(f.swap, 0);
    assert.equal(typeof f.name, 'string', 'FlavorPayload.name is not nullable in Nova');
  });

  test('instance.power_on.end: active, no task, running', () => {
    const n = buildPowerOnNotification({
      eventType: 'instance.power_on.end',
      instance: record({ vmState: 'active', taskState: null, powerState: 1 }),
      requestId: REQ,
    });
    assert.equal(n.priority, 'INFO');
    const d = n.payload['nova_object.data'];
    assert.deepEqual(sorted(d), SAMPLE_INSTANCE_ACTION_DATA);
    assert.equal(d.state, 'active');
    assert.equal(d.task_state, null);
    assert.equal(d.power_state, 'running');
    assert.equal(d.fault, null);
  });

  test('instance.power_on.error: priority ERROR and an ExceptionPayload 1.1 fault', () => {
    const n = buildPowerOnNotification({
      eventType: 'instance.power_on.error',
      instance: record({ vmState: 'stopped', taskState: null, powerState: 4 }),
      requestId: REQ,
      fault,
    });
    assert.equal(n.priority, 'ERROR');
    assert.equal(n.event_type, 'instance.power_on.error');
    const d = n.payload['nova_object.data'];
    assert.deepEqual(sorted(d), SAMPLE_INSTANCE_ACTION_DATA);
    assert.ok(d.fault);
    assert.deepEqual(sorted(d.fault), NOVA_OBJECT_KEYS);
    assert.equal(d.fault['nova_object.name'], 'ExceptionPayload');
    assert.equal(d.fault['nova_object.version'], '1.1');
    assert.deepEqual(sorted(d.fault['nova_object.data']), SAMPLE_EXCEPTION_DATA);
    assert.deepEqual(d.fault['nova_object.data'], {
      exception: 'VirtualInterfaceCreateException',
      exception_message: 'Virtual Interface creation failed',
      function_name: 'waitForVifPlugged',
      module_name: 'nova_temporal.workflows.power_on_instance',
      traceback: fault.traceback,
    });
  });

  test('a fault without a location still fills every ExceptionPayload field', () => {
    const n = buildPowerOnNotification({
      eventType: 'instance.power_on.error',
      instance: record(),
      requestId: REQ,
      fault: { exception: 'Timeout', message: 'no vif event' },
    });
    const f = n.payload['nova_object.data'].fault!['nova_object.data'];
    assert.deepEqual(f, {
      exception: 'Timeout',
      exception_message: 'no vif event',
      function_name: 'unknown',
      module_name: 'unknown',
      traceback: '',
    });
  });

  test('only .error carries a fault', () => {
    assert.throws(
      () => buildPowerOnNotification({ eventType: 'instance.power_on.end', instance: record(), requestId: REQ, fault }),
      TypeError,
    );
  });

  test('an unknown power state is null, not a wrong name', () => {
    const n = buildPowerOnNotification({
      eventType: 'instance.power_on.start',
      instance: record({ powerState: 42 }),
      requestId: REQ,
    });
    assert.equal(n.payload['nova_object.data'].power_state, null);
  });

  test('ip_addresses are IpPayloads, one per fixed IP, when the NetworkInfo is known', () => {
    const vif = {
      id: 'ce531f90-199f-48c0-816c-13e38010b442',
      address: 'fa:16:3e:4c:2c:30',
      devname: 'tapce531f90-19',
      type: 'ovs',
      vnicType: 'normal',
      network: {
        id: 'n1',
        label: 'private',
        bridge: 'br-int',
        mtu: 1450,
        subnets: [
          { id: 's4', cidr: '192.168.1.0/24', gateway: null, ips: [{ address: '192.168.1.3', version: 4 }] },
          { id: 's6', cidr: 'fd00::/64', gateway: null, ips: [{ address: 'fd00::3', version: 6 }] },
        ],
      },
      active: true,
      details: { ovsHybridPlug: false, portFilter: true },
      portSecurityEnabled: true,
      allowedAddressPairs: [],
      securityGroupRules: [],
    } as const;
    const ips = ipPayloads([vif] as unknown as NetworkInfo);
    assert.equal(ips.length, 2);
    for (const ip of ips) {
      assert.deepEqual(sorted(ip), NOVA_OBJECT_KEYS);
      assert.equal(ip['nova_object.name'], 'IpPayload');
      assert.equal(ip['nova_object.version'], '1.0');
      assert.deepEqual(sorted(ip['nova_object.data']), SAMPLE_IP_DATA);
    }
    assert.deepEqual(ips[0]!['nova_object.data'], {
      mac: 'fa:16:3e:4c:2c:30',
      address: '192.168.1.3',
      port_uuid: 'ce531f90-199f-48c0-816c-13e38010b442',
      meta: {},
      version: 4,
      label: 'private',
      device_name: 'tapce531f90-19',
    });
    assert.equal(ips[1]!['nova_object.data'].version, 6);
  });
});

describe('payload: ids and times', () => {
  test('uuidV5 matches the RFC 4122 example', () => {
    assert.equal(
      uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'),
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });

  test('message_id is stable per (event, instance, request) and differs otherwise', () => {
    const a = buildPowerOnNotification({ eventType: 'instance.power_on.start', instance: record(), requestId: REQ });
    const b = buildPowerOnNotification({ eventType: 'instance.power_on.start', instance: record(), requestId: REQ });
    assert.equal(a.message_id, b.message_id);
    assert.match(a.message_id, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(a.message_id, messageIdFor('instance.power_on.end', UUID, REQ));
    assert.notEqual(a.message_id, messageIdFor('instance.power_on.start', UUID, 'req-other'));
    const noReq = buildPowerOnNotification({
      eventType: 'instance.power_on.start',
      instance: record(),
      requestId: null,
    });
    assert.notEqual(noReq.message_id, a.message_id);
  });

  test('timestamps look like Python str(datetime) and Nova DateTimeField', () => {
    assert.equal(osloTimestamp(new Date('2026-01-02T03:04:05.678Z')), '2026-01-02 03:04:05.678000');
    assert.equal(osloTimestamp(new Date('2026-01-02T03:04:05.000Z')), '2026-01-02 03:04:05');
    assert.equal(novaDateTime('2026-01-02T03:04:05.678Z'), '2026-01-02T03:04:05Z');
    assert.equal(novaDateTime(null), null);
    assert.equal(novaDateTime('garbage'), null);
  });
});

describe('oslo.messaging envelope', () => {
  const n = buildPowerOnNotification({
    eventType: 'instance.power_on.error',
    instance: record(),
    requestId: REQ,
    fault,
  });

  test('body is {"oslo.version": "2.0", "oslo.message": "<json>"} holding the notification', () => {
    const env = osloEnvelope(n);
    assert.deepEqual(sorted(env), ['oslo.message', 'oslo.version']);
    assert.equal(env['oslo.version'], '2.0');
    assert.equal(typeof env['oslo.message'], 'string');
    const inner = JSON.parse(env['oslo.message']) as Record<string, unknown>;
    for (const k of [...SAMPLE_TOP_LEVEL, ...OSLO_ADDED]) assert.ok(k in inner, `inner message has ${k}`);
    assert.deepEqual(inner.payload, n.payload);
    assert.equal(inner._unique_id, n.message_id.replace(/-/g, ''));
    assert.equal(inner._context_request_id, REQ);
    assert.deepEqual(osloMessage(n), inner);
  });

  test('routing key is <topic>.<priority> and the message is JSON', () => {
    assert.equal(routingKey('versioned_notifications', 'ERROR'), 'versioned_notifications.error');
    assert.equal(routingKey('versioned_notifications', 'INFO'), 'versioned_notifications.info');
    const o = publishOptions(n);
    assert.equal(o.contentType, 'application/json');
    assert.equal(o.contentEncoding, 'utf-8');
    assert.equal(o.messageId, n.message_id);
  });

  test('transport URLs: amqp, rabbit (oslo), vhosts, one host only', () => {
    assert.deepEqual(parseTransportUrl('amqp://u:p%40ss@127.0.0.1:5673/%2F', 60), {
      protocol: 'amqp',
      hostname: '127.0.0.1',
      port: 5673,
      username: 'u',
      password: 'p@ss',
      vhost: '/',
      heartbeat: 60,
    });
    assert.equal(parseTransportUrl('rabbit://u:p@h:5672/', 0).vhost, '/');
    assert.equal(parseTransportUrl('rabbit://u:p@h/nova', 0).vhost, 'nova');
    assert.equal(parseTransportUrl('amqp://u:p@h', 0).port, 5672);
    assert.equal(parseTransportUrl('amqps://u:p@h', 0).port, 5671);
    assert.throws(() => parseTransportUrl('http://u:p@h/', 0), TransportUrlError);
    assert.throws(() => parseTransportUrl('rabbit://u:p@h1:5672,u:p@h2:5672/', 0), TransportUrlError);
    assert.throws(() => parseTransportUrl('not a url', 0), TransportUrlError);
  });

  test('redactUrl never shows the password', () => {
    const safe = redactUrl('amqp://nova_temporal:s3cretpassw0rd@127.0.0.1:5672/%2F');
    assert.ok(!safe.includes('s3cretpassw0rd'));
    assert.match(safe, /^amqp:\/\/nova_temporal:\*\*\*@127\.0\.0\.1:5672\//);
  });
});

describe('AmqpNotifier without a broker', () => {
  test('notify rejects (so the activity retries) and logs and errors hide the password', async () => {
    const lines: string[] = [];
    const log = { info: (o: unknown, m?: string) => lines.push(JSON.stringify([o, m])) } as any;
    log.warn = log.info;
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    const notifier = new AmqpNotifier({
      url: 'amqp://nova_temporal:hunter2hunter2@127.0.0.1:1/%2F',
      connectTimeoutMs: 2000,
      logger: log,
    });
    assert.ok(!notifier.safeUrl.includes('hunter2hunter2'));
    const t0 = Date.now();
    await assert.rejects(
      notifier.notify('instance.power_on.start', record(), { requestId: REQ }),
      (err: unknown) => err instanceof AmqpPublishError && !err.message.includes('hunter2hunter2'),
    );
    assert.ok(Date.now() - t0 < 2000, 'a refused connection fails fast');
    await assert.rejects(notifier.notify('instance.power_on.start', record(), { requestId: REQ }), AmqpPublishError);
    assert.ok(lines.every((l) => !l.includes('hunter2hunter2')));
    await notifier.close();
    await assert.rejects(notifier.notify('instance.power_on.start', record(), { requestId: REQ }), /closed/);
  });

  test('a bad URL is refused up front', () => {
    assert.throws(() => new AmqpNotifier({ url: 'http://x/' }), TransportUrlError);
  });
});

class FakeStore {
  events: { uuid: string; requestId: string; event: InstanceActionEvent }[] = [];
  async recordActionEvent(uuid: string, requestId: string, event: InstanceActionEvent): Promise<void> {
    const i = this.events.findIndex(
      (e) => e.uuid === uuid && e.requestId === requestId && e.event.event === event.event,
    );
    if (i >= 0) this.events.splice(i, 1);
    this.events.push({ uuid, requestId, event });
  }
}

describe('StoreNotifier and FanoutNotifier', () => {
  test('each notification becomes one notification:<event_type> event of the action', async () => {
    const store = new FakeStore();
    const n = new StoreNotifier(store);
    await n.notify('instance.power_on.start', record(), { requestId: REQ });
    await n.notify('instance.power_on.start', record(), { requestId: REQ }); // a retry
    await n.notify('instance.power_on.error', record({ taskState: null }), { requestId: REQ, fault });
    assert.deepEqual(
      store.events.map((e) => [e.uuid, e.requestId, e.event.event, e.event.result]),
      [
        [UUID, REQ, 'notification:instance.power_on.start', 'Success'],
        [UUID, REQ, 'notification:instance.power_on.error', 'Success'],
      ],
    );
    const start = store.events[0]!.event;
    assert.match(start.details!, new RegExp(`message_id=${messageIdFor('instance.power_on.start', UUID, REQ)}`));
    assert.match(start.details!, /priority=INFO/);
    assert.match(store.events[1]!.event.details!, /priority=ERROR .*fault=VirtualInterfaceCreateException/);
  });

  test('fanout calls every notifier even when one fails, then rejects with all failures', async () => {
    const calls: string[] = [];
    const ok = (name: string): Notifier => ({
      notify: async (t) => {
        calls.push(`${name}:${t}`);
      },
    });
    const bad: Notifier = {
      notify: async () => {
        calls.push('bad');
        throw new Error('broker down');
      },
    };
    const fan = new FanoutNotifier([ok('a'), bad, ok('b')]);
    await assert.rejects(
      fan.notify('instance.power_on.end', record(), { requestId: REQ }),
      (err: unknown) => err instanceof NotifyFanoutError && err.errors.length === 1 && /broker down/.test(err.message),
    );
    assert.deepEqual(calls.sort(), ['a:instance.power_on.end', 'b:instance.power_on.end', 'bad']);
    await new FanoutNotifier([ok('a'), ok('b')]).notify('instance.power_on.end', record(), { requestId: REQ });
  });

  test('LogNotifier logs the whole notification, errors at error level', async () => {
    const out: { level: string; obj: any; msg: string }[] = [];
    const logger = {
      info: (obj: unknown, msg: string) => out.push({ level: 'info', obj, msg }),
      error: (obj: unknown, msg: string) => out.push({ level: 'error', obj, msg }),
    } as any;
    const n = new LogNotifier(logger);
    await n.notify('instance.power_on.start', record(), { requestId: REQ });
    await n.notify('instance.power_on.error', record(), { requestId: REQ, fault });
    assert.deepEqual(
      out.map((o) => [o.level, o.msg]),
      [
        ['info', 'instance.power_on.start'],
        ['error', 'instance.power_on.error'],
      ],
    );
    assert.equal(out[0]!.obj.notification.payload['nova_object.name'], 'InstanceActionPayload');
  });
});

describe('notification settings', () => {
  test('defaults are valid; messagingv2 needs a usable transport_url', () => {
    assert.equal(notificationSettingsSchema.safeParse(notificationDefaults()).success, true);
    const mq = { ...notificationDefaults(), driver: 'messagingv2' as const };
    assert.equal(notificationSettingsSchema.safeParse(mq).success, false);
    assert.equal(
      notificationSettingsSchema.safeParse({ ...mq, transport_url: 'amqp://u:p@127.0.0.1:5672/%2F' }).success,
      true,
    );
    assert.equal(notificationSettingsSchema.safeParse({ ...mq, transport_url: 'http://x/' }).success, false);
    assert.equal(notificationSettingsSchema.safeParse({ ...notificationDefaults(), extra: 1 }).success, false);
  });

  test('without a driver: RabbitMQ when a transport_url is set, else the log', () => {
    assert.equal(resolvedDriver(notificationDefaults()), 'log');
    assert.equal(resolvedDriver({ ...notificationDefaults(), transport_url: 'amqp://u:p@h/' }), 'messagingv2');
    assert.equal(resolvedDriver({ ...notificationDefaults(), driver: 'noop', transport_url: 'amqp://u:p@h/' }), 'noop');
  });

  test('createNotifier always records in the action log, plus the driver', async () => {
    const store = new FakeStore();
    const logged: string[] = [];
    const logger = { info: (_o: unknown, m: string) => logged.push(m), error: () => undefined } as any;
    const n = createNotifier(notificationDefaults(), { store, logger });
    await n.notify('instance.power_on.start', record(), { requestId: REQ });
    assert.equal(store.events.length, 1);
    assert.deepEqual(logged, ['instance.power_on.start']);
    const noop = createNotifier({ ...notificationDefaults(), driver: 'noop' }, { store: new FakeStore(), logger });
    assert.ok(noop instanceof FanoutNotifier && noop.notifiers.length === 1);
    await n.close?.();
  });
});
