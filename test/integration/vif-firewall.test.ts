import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test, type TestContext } from 'node:test';
import { createNetworkActivities } from '../../src/activities/network.js';
import { hybridDeviceNames, tapName, type Vif } from '../../src/domain/network-model.js';
import { firewallTableName } from '../../src/domain/nft-ruleset.js';
import type { FirewallDriver } from '../../src/domain/vif-plug.js';
import * as nft from '../../src/host/nft.js';
import * as openflow from '../../src/host/openflow.js';
import * as ovs from '../../src/host/ovs.js';

// Vif plugging and the firewall on the real host: Linux bridge, veths, OVS
// br-int (netdev datapath), nft, OpenFlow. The "guest" is a python process
// attached to the tap; the far side is a veth in br-int whose peer sits in a
// network namespace. Every drop is proven with a frame that does get through
// while the firewall is off. Names are unique per run; everything made here is
// removed in `after`, also when a test fails.

const BRIDGE = process.env.NT_INTEGRATION_BRIDGE ?? 'br-int';
const PACKETS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/support/packets.py');

const run = randomBytes(3).toString('hex');
const net = `10.${200 + (parseInt(run.slice(0, 2), 16) % 50)}.${parseInt(run.slice(2, 4), 16)}`;
const farIp = `${net}.200`;
const farMac = `fa:16:3f:${run.slice(0, 2)}:${run.slice(2, 4)}:${run.slice(4, 6)}`;
const netns = `nt-fw-${run}`;
const farVeth = `ntw${run}a`; // in br-int
const farPeer = `ntw${run}b`; // in the netns

const children: ChildProcessWithoutNullStreams[] = [];
const sh = (file: string, args: string[]) =>
  execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const exists = (dev: string) => existsSync(`/sys/class/net/${dev}`);
const sysfs = (file: string) => readFileSync(file, 'utf8').trim();
const masterOf = (dev: string) => JSON.parse(sh('ip', ['-j', 'link', 'show', 'dev', dev]))[0].master ?? null;
const ifindex = (dev: string) => Number(sysfs(`/sys/class/net/${dev}/ifindex`));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ourTables = async (uuid: string) =>
  (await nft.listTables('nt-')).filter((t) => t.name === firewallTableName(uuid));

function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // cleanup of something that is not there
  }
}

async function timed<T>(t: TestContext, label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const result = await fn();
  t.diagnostic(`${label}: ${(performance.now() - t0).toFixed(1)} ms`);
  return result;
}

type Frame = Record<string, any>;

/**
 * Counter deltas once they reach `expected` (or after 3 s): OVS moves datapath
 * statistics into its OpenFlow counters only every few hundred milliseconds.
 */
async function settledDeltas(
  read: () => Promise<Record<string, number>>,
  before: Record<string, number>,
  expected: Record<string, number>,
): Promise<Record<string, number>> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const now = await read();
    const deltas = Object.fromEntries(Object.keys(expected).map((k) => [k, (now[k] ?? 0) - (before[k] ?? 0)]));
    if (Object.keys(expected).every((k) => deltas[k]! >= expected[k]!) || Date.now() > deadline) return deltas;
    await sleep(100);
  }
}

/** One python endpoint (packets.py): send frame specs, wait for frames it receives. */
class Endpoint {
  private frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  private constructor(readonly child: ChildProcessWithoutNullStreams) {}

  static async start(argv: string[]): Promise<Endpoint> {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    children.push(child);
    const ep = new Endpoint(child);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let ready!: () => void;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const msg = JSON.parse(line);
      if (msg.ready) ready();
      if (msg.rx) ep.frames.push(msg.rx);
      ep.waiters.splice(0).forEach((w) => w());
    });
    const exited = new Promise<never>((_, reject) =>
      child.on('exit', (code) => reject(new Error(`${argv.join(' ')} exited ${code}: ${stderr}`))),
    );
    exited.catch(() => {});
    await Promise.race([isReady, exited]);
    return ep;
  }

  send(spec: Record<string, unknown>): void {
    this.child.stdin.write(JSON.stringify(spec) + '\n');
  }

  /** Frames received so far with this payload (or matching this predicate). */
  seen(match: string | ((f: Frame) => boolean)): Frame[] {
    return this.frames.filter(typeof match === 'string' ? (f) => f.payload === match : match);
  }

  /** Waits until a matching frame arrived; `resend` runs every 200 ms meanwhile. */
  async waitFor(match: string | ((f: Frame) => boolean), timeoutMs: number, resend?: () => void): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.seen(match)[0];
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no frame matching ${String(match)} within ${timeoutMs} ms`);
      resend?.();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill();
    await exited;
  }
}

before(() => {
  // The far side: a veth in br-int whose peer is in a namespace, no IP stack noise.
  sh('ip', ['netns', 'add', netns]);
  sh('ip', ['link', 'add', farVeth, 'type', 'veth', 'peer', 'name', farPeer]);
  sh('ip', ['link', 'set', farPeer, 'netns', netns]);
  sh('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
  sh('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', farPeer, 'up']);
  sh('ip', ['link', 'set', farVeth, 'up']);
  sh('ovs-vsctl', ['--timeout=10', 'add-port', BRIDGE, farVeth]);
});

after(() => {
  for (const child of children) if (child.pid && child.exitCode === null) quietly(() => process.kill(child.pid!));
  quietly(() => sh('ovs-vsctl', ['--timeout=10', '--if-exists', 'del-port', BRIDGE, farVeth]));
  quietly(() => sh('ip', ['link', 'del', 'dev', farVeth]));
  quietly(() => sh('ip', ['netns', 'del', netns]));
  // The OpenFlow driver's one shared flow (table 73 -> NORMAL): removed when nothing else uses the table.
  const table73 = sh('ovs-ofctl', ['-O', 'OpenFlow14', 'dump-flows', BRIDGE, 'table=73']).split('\n');
  const flows73 = table73.filter((l) => l.includes('cookie='));
  if (flows73.length === 1 && /priority=0 actions=NORMAL/.test(flows73[0]!)) {
    quietly(() => sh('ovs-ofctl', ['-O', 'OpenFlow14', '--strict', 'del-flows', BRIDGE, 'table=73,priority=0']));
  }
});

/** One guest port of a test instance, with its own MAC and addresses in the shared subnet. */
function makeVif(portId: string, host: number, hybrid: boolean): Vif {
  const b = randomBytes(3).toString('hex');
  return {
    id: portId,
    address: `fa:16:3e:${b.slice(0, 2)}:${b.slice(2, 4)}:${b.slice(4, 6)}`,
    devname: tapName(portId),
    type: 'ovs',
    vnicType: 'normal',
    network: {
      id: randomUUID(),
      label: 'test-net',
      bridge: BRIDGE,
      mtu: 1450,
      subnets: [
        {
          id: randomUUID(),
          cidr: `${net}.0/24`,
          gateway: `${net}.1`,
          ips: [
            { address: `${net}.${host}`, version: 4 },
            { address: `${net}.${host + 1}`, version: 4 },
          ],
        },
      ],
    },
    active: false,
    details: { ovsHybridPlug: hybrid, portFilter: false },
    portSecurityEnabled: true,
    allowedAddressPairs: [{ ipAddress: `${net}.${host + 50}/32`, macAddress: '' }],
    securityGroupRules: [
      {
        direction: 'ingress',
        ethertype: 'IPv4',
        protocol: 'tcp',
        portRangeMin: 22,
        portRangeMax: 22,
        remoteIpPrefix: null,
      },
      {
        direction: 'egress',
        ethertype: 'IPv4',
        protocol: null,
        portRangeMin: null,
        portRangeMax: null,
        remoteIpPrefix: null,
      },
    ],
  };
}

interface DriverCase {
  driver: FirewallDriver;
  hybrid: boolean;
  /** first host number of the guest's addresses in the shared subnet */
  host: number;
  /** drop counters by name, from the firewall's own statistics */
  counters(instanceUuid: string, vif: Vif): Promise<Record<string, number>>;
  /** what the spoofed frames add to the counters */
  spoofDrops: Record<string, number>;
  /** the counter of frames to the guest that no rule allows */
  toGuestDrop: string;
  firewallPresent(instanceUuid: string): Promise<boolean>;
}

const nftCase: DriverCase = {
  driver: 'nftables',
  hybrid: true,
  host: 5,
  async counters(instanceUuid, vif) {
    const out: Record<string, number> = {};
    for (const family of ['bridge', 'inet']) {
      for (const c of await nft.ruleCounters(family, firewallTableName(instanceUuid))) {
        out[c.comment.replace(`${vif.devname}: `, '')] = c.packets;
      }
    }
    return out;
  },
  spoofDrops: { 'spoofed source': 2, 'rogue DHCP server': 1, 'other ethertype or VLAN tag': 2, 'spoofed ARP': 1 },
  toGuestDrop: 'no rule allows it to guest',
  async firewallPresent(instanceUuid) {
    return (await ourTables(instanceUuid)).length === 2;
  },
};

const openflowCase: DriverCase = {
  driver: 'openvswitch',
  hybrid: false,
  host: 25,
  async counters(instanceUuid) {
    // "table=0, n_packets=3, ..., priority=170,in_port=7 actions=drop" -> "0/170/in_port=7 actions=drop"
    const out: Record<string, number> = {};
    for (const line of await openflow.dumpFlows(BRIDGE, instanceUuid)) {
      const m = /table=(\d+), n_packets=(\d+),.* priority=(\d+),?(.*)$/.exec(line);
      if (!m) continue;
      const match = m[4]!.replace(/in_port=\d+,?|reg5=0x[0-9a-f]+,?/g, '').trim();
      const key = `${m[1]}/${m[3]}/${match}`;
      out[key] = (out[key] ?? 0) + Number(m[2]);
    }
    return out;
  },
  spoofDrops: {
    '0/170/actions=drop': 4, // spoofed IP, spoofed MAC, other ethertype, spoofed ARP
    '0/200/vlan_tci=0x1000/0x1000 actions=drop': 1,
    '0/200/udp,tp_src=67,tp_dst=68 actions=drop': 1,
  },
  toGuestDrop: '82/1/actions=drop',
  async firewallPresent(instanceUuid) {
    return (await openflow.dumpFlows(BRIDGE, instanceUuid)).length > 0;
  },
};

for (const c of [nftCase, openflowCase]) {
  describe(`firewall_driver ${c.driver}: ${c.hybrid ? 'hybrid plug' : 'tap in ' + BRIDGE}`, () => {
    const instanceUuid = randomUUID();
    const portId = randomUUID();
    const vif = makeVif(portId, c.host, c.hybrid);
    const mac = vif.address;
    const [guestIp, secondIp] = vif.network.subnets[0]!.ips.map((ip) => ip.address) as [string, string];
    const pairIp = vif.allowedAddressPairs[0]!.ipAddress.replace('/32', '');
    const input = { instanceUuid, networkInfo: [vif] };
    const tap = tapName(portId);
    const { qbr, qvb, qvo } = hybridDeviceNames(portId);
    const ovsPort = c.hybrid ? qvo : tap;
    const network = createNetworkActivities({ integrationBridge: BRIDGE, firewallDriver: c.driver });
    const otherInstances: string[] = [];

    after(async () => {
      for (const uuid of [instanceUuid, ...otherInstances]) {
        await network
          .unplugVifs({ instanceUuid: uuid, networkInfo: uuid === instanceUuid ? [vif] : [] })
          .catch(() => {});
        await network.removeFirewall({ instanceUuid: uuid }).catch(() => {});
      }
      for (const dev of [tap, qbr, qvb, qvo]) quietly(() => sh('ip', ['link', 'del', 'dev', dev]));
    });

    const plugSnapshot = () => ({
      ifindex: (c.hybrid ? [tap, qbr, qvb, qvo] : [tap]).map(ifindex),
      masters: c.hybrid ? [tap, qvb].map(masterOf) : [],
      ovs: sh('ovs-vsctl', [
        '--format=json',
        '--columns=_uuid,name,external_ids',
        'find',
        'Interface',
        `name=${ovsPort}`,
      ]),
    });

    test('plugVifs plugs the vif with the external_ids Neutron keys on; twice changes nothing', async (t) => {
      await timed(t, 'plugVifs (first)', () => network.plugVifs(input));
      assert.ok(exists(tap), 'the tap exists');
      assert.equal(sysfs(`/sys/class/net/${tap}/mtu`), '1450');
      assert.equal(sh('ovs-vsctl', ['port-to-br', ovsPort]).trim(), BRIDGE, `${ovsPort} is in ${BRIDGE}`);
      if (c.hybrid) {
        assert.equal(masterOf(tap), qbr, 'the tap is in qbr');
        assert.equal(masterOf(qvb), qbr, 'qvb is in qbr');
        assert.equal(sysfs(`/sys/class/net/${qbr}/bridge/forward_delay`), '0');
        assert.equal(sysfs(`/sys/class/net/${qbr}/bridge/stp_state`), '0');
        assert.equal(sysfs(`/sys/class/net/${qbr}/bridge/multicast_snooping`), '0');
        for (const dev of [qbr, tap, qvb, qvo]) {
          assert.equal(sysfs(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`), '1', dev);
        }
        for (const dev of [qvb, qvo]) assert.match(sh('ethtool', ['-k', dev]), /^tx-checksumming: off/m, dev);
        for (const dev of [qvb, qvo]) assert.equal(sysfs(`/sys/class/net/${dev}/mtu`), '1450', dev);
      } else {
        assert.ok(!exists(qbr), 'no qbr without the hybrid plug');
      }
      const [iface, ...more] = await ovs.interfacesOfInstance(instanceUuid);
      assert.equal(more.length, 0);
      assert.equal(iface!.name, ovsPort);
      assert.deepEqual(iface!.externalIds, {
        'iface-id': portId,
        'iface-status': 'active',
        'attached-mac': mac,
        'vm-uuid': instanceUuid,
      });

      const before = plugSnapshot();
      await timed(t, 'plugVifs (again)', () => network.plugVifs(input));
      assert.deepEqual(plugSnapshot(), before, 'a second plug recreates and changes nothing');

      // A crash half-way (the tap and the OVS port gone, the rest there): a retry converges.
      sh('ip', ['link', 'del', 'dev', tap]);
      sh('ovs-vsctl', ['--if-exists', 'del-port', ovsPort]);
      await network.plugVifs(input);
      assert.equal(sh('ovs-vsctl', ['port-to-br', ovsPort]).trim(), BRIDGE);
      if (c.hybrid) {
        assert.equal(masterOf(tap), qbr);
        assert.equal(ifindex(qvb), before.ifindex[2], 'the veth that was there is kept');
      }
    });

    test('applyFirewall installs the rules; a second run replaces them atomically', async (t) => {
      await timed(t, 'applyFirewall (first)', () => network.applyFirewall(input));
      assert.ok(await c.firewallPresent(instanceUuid));
      const once = await c.counters(instanceUuid, vif);
      await timed(t, 'applyFirewall (again)', () => network.applyFirewall(input));
      assert.deepEqual(Object.keys(await c.counters(instanceUuid, vif)).sort(), Object.keys(once).sort());
      if (c.driver === 'nftables') {
        assert.deepEqual((await ourTables(instanceUuid)).map((x) => x.family).sort(), ['bridge', 'inet']);
        assert.equal(sysfs('/proc/sys/net/bridge/bridge-nf-call-iptables'), '1');
      }
    });

    test('frames: legitimate ones pass, spoofed ones are dropped and counted, SG rules are stateful', async (t) => {
      const far = await Endpoint.start(['ip', 'netns', 'exec', netns, 'python3', PACKETS, 'wire', farPeer]);
      const guest = await Endpoint.start(['python3', PACKETS, 'tap', tap]);
      const fromGuest = { src_mac: mac, dst_mac: farMac, src_ip: guestIp, dst_ip: farIp, sport: 4000, dport: 5000 };
      const toGuest = { src_mac: farMac, dst_mac: mac, src_ip: farIp, dst_ip: guestIp, sport: 40000 };
      const counters = () => c.counters(instanceUuid, vif);
      try {
        // A fresh tap forwards only after about a second: the legitimate frame first.
        const t0 = performance.now();
        await far.waitFor('legit', 10_000, () => guest.send({ kind: 'udp', ...fromGuest, payload: 'legit' }));
        t.diagnostic(`first legitimate frame through after ${(performance.now() - t0).toFixed(0)} ms`);
        await far.waitFor('second-ip', 3000, () =>
          guest.send({ kind: 'udp', ...fromGuest, src_ip: secondIp, payload: 'second-ip' }),
        );
        await far.waitFor('pair-ip', 3000, () =>
          guest.send({ kind: 'udp', ...fromGuest, src_ip: pairIp, payload: 'pair-ip' }),
        );
        const dhcp = {
          src_ip: '0.0.0.0',
          dst_ip: '255.255.255.255',
          dst_mac: 'ff:ff:ff:ff:ff:ff',
          sport: 68,
          dport: 67,
        };
        await far.waitFor('dhcp-discover', 3000, () =>
          guest.send({ kind: 'udp', ...fromGuest, ...dhcp, payload: 'dhcp-discover' }),
        );
        const arp = { kind: 'arp', src_mac: mac, dst_mac: 'ff:ff:ff:ff:ff:ff', sha: mac, tpa: farIp };
        await far.waitFor(
          (f) => f.spa === guestIp && f.sha === mac,
          3000,
          () => guest.send({ ...arp, spa: guestIp }),
        );

        // Control: with the firewall off, every frame the firewall must stop does get through.
        const spoofs = (tag: string): Record<string, unknown>[] => [
          { kind: 'udp', ...fromGuest, src_ip: `${net}.99`, payload: `spoof-ip${tag}` },
          { kind: 'udp', ...fromGuest, src_mac: 'fa:16:3e:ee:ee:ee', payload: `spoof-mac${tag}` },
          {
            kind: 'udp',
            ...fromGuest,
            sport: 67,
            dport: 68,
            dst_mac: 'ff:ff:ff:ff:ff:ff',
            payload: `rogue-dhcp${tag}`,
          },
          { kind: 'raw', src_mac: mac, dst_mac: farMac, ethertype: 0x88b5, payload: `other-ethertype${tag}` },
          { kind: 'udp', ...fromGuest, vlan: 42, payload: `vlan-tagged${tag}` },
          { ...arp, spa: `${net}.1` },
        ];
        const spoofedArp = (f: Frame) => f.spa === `${net}.1` && f.sha === mac;
        const dropped = ['spoof-ip', 'spoof-mac', 'rogue-dhcp', 'other-ethertype', 'vlan-tagged'];
        await network.removeFirewall(input);
        for (const spec of spoofs('-control')) guest.send(spec);
        for (const payload of dropped) await far.waitFor(`${payload}-control`, 3000);
        await far.waitFor(spoofedArp, 3000);
        const arpsBefore = far.seen(spoofedArp).length;
        far.send({ kind: 'tcp', ...toGuest, dport: 80, flags: 'S', payload: 'http-control' });
        far.send({ kind: 'udp', ...toGuest, sport: 53, dport: 4001, payload: 'unsolicited-control' });
        await guest.waitFor('http-control', 3000);
        await guest.waitFor('unsolicited-control', 3000);
        await network.applyFirewall(input);
        // The firewall is back: a legitimate frame passes again before the spoofs are sent.
        await far.waitFor('legit-again', 3000, () => guest.send({ kind: 'udp', ...fromGuest, payload: 'legit-again' }));

        const before = await counters();
        for (const spec of spoofs('')) guest.send(spec);
        // A legitimate frame after them, on the same path: once it is through, the others would be too.
        await far.waitFor('after-spoofs', 3000, () =>
          guest.send({ kind: 'udp', ...fromGuest, payload: 'after-spoofs' }),
        );
        await sleep(300);
        for (const payload of dropped)
          assert.deepEqual(far.seen(payload), [], `${payload} must not reach the far side`);
        assert.equal(far.seen(spoofedArp).length, arpsBefore, 'the spoofed ARP must not reach the far side');
        const deltas = await settledDeltas(counters, before, c.spoofDrops);
        for (const [name, n] of Object.entries(c.spoofDrops)) assert.equal(deltas[name], n, `drop counter ${name}`);

        // To the guest: TCP 22 is allowed by its security group, TCP 80 is not.
        await guest.waitFor('ssh', 3000, () =>
          far.send({ kind: 'tcp', ...toGuest, dport: 22, flags: 'S', payload: 'ssh' }),
        );
        const dropsBefore = (await counters())[c.toGuestDrop] ?? 0;
        far.send({ kind: 'tcp', ...toGuest, dport: 80, flags: 'S', payload: 'http' });
        far.send({ kind: 'udp', ...toGuest, sport: 53, dport: 4001, payload: 'unsolicited' });
        // Stateful: a reply to the guest's own UDP flow (4000 -> 5000) comes back in.
        await guest.waitFor('reply', 3000, () =>
          far.send({ kind: 'udp', ...toGuest, sport: 5000, dport: 4000, payload: 'reply' }),
        );
        await sleep(300);
        assert.deepEqual(guest.seen('http'), [], 'TCP 80 is not in the security group');
        assert.deepEqual(guest.seen('unsolicited'), [], 'UDP that the guest did not ask for is dropped');
        const toGuestDrops = await settledDeltas(counters, { [c.toGuestDrop]: dropsBefore }, { [c.toGuestDrop]: 2 });
        assert.equal(toGuestDrops[c.toGuestDrop], 2, 'both are counted');
      } finally {
        await far.stop();
        await guest.stop();
      }
    });

    test('unplugVifs and removeFirewall leave nothing, and succeed again when all is gone', async (t) => {
      await timed(t, 'unplugVifs', () => network.unplugVifs(input));
      await timed(t, 'removeFirewall', () => network.removeFirewall(input));
      for (const dev of [tap, qbr, qvb, qvo]) assert.ok(!exists(dev), `${dev} is gone`);
      assert.deepEqual(await ovs.interfacesOfInstance(instanceUuid), []);
      assert.deepEqual(await ovs.findInterfaces(`name=${ovsPort}`), []);
      assert.deepEqual(await ourTables(instanceUuid), []);
      assert.deepEqual(await openflow.dumpFlows(BRIDGE, instanceUuid), []);
      await network.unplugVifs(input);
      await network.removeFirewall(input);
    });

    test('unplug and firewall removal work from the instance uuid alone', async () => {
      const uuid = randomUUID();
      otherInstances.push(uuid);
      const id = randomUUID();
      const other = { instanceUuid: uuid, networkInfo: [makeVif(id, c.host + 10, c.hybrid)] };
      await network.plugVifs(other);
      await network.applyFirewall(other);
      assert.ok(await c.firewallPresent(uuid));
      await network.unplugVifs({ instanceUuid: uuid });
      await network.removeFirewall({ instanceUuid: uuid });
      const names = hybridDeviceNames(id);
      for (const dev of [tapName(id), names.qbr, names.qvb, names.qvo]) assert.ok(!exists(dev), `${dev} is gone`);
      assert.deepEqual(await ovs.interfacesOfInstance(uuid), []);
      assert.deepEqual(await ourTables(uuid), []);
      assert.deepEqual(await openflow.dumpFlows(BRIDGE, uuid), []);
    });
  });
}
