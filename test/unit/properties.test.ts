import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { create } from 'xmlbuilder2';
import { registerServerBody } from '../../src/control-plane/schemas.js';
import { buildDomainXml, type GuestConfig } from '../../src/domain/domain-xml.js';
import { baseImagePath, instanceDir } from '../../src/domain/image-cache.js';
import {
  applyTransition,
  canTransition,
  InstanceInvalidState,
  serverStatus,
  type InstanceStatus,
  type PowerOnTransition,
  type TaskState,
  type VmState,
} from '../../src/domain/instance-state.js';
import { hybridDeviceNames, tapName, type SecurityGroupRule, type Vif } from '../../src/domain/network-model.js';
import { buildRuleset, removalRuleset } from '../../src/domain/nft-ruleset.js';
import {
  firewallFor,
  InvalidVifValue,
  planVif,
  plugKind,
  type FirewallDriver,
  type VifPlan,
} from '../../src/domain/vif-plug.js';
import { parseAnswer } from '../../src/neutron/client.js';
import { NeutronResponseInvalid } from '../../src/neutron/errors.js';
import { buildNetworkInfo, NetworkInfoError, type NeutronAnswers } from '../../src/neutron/network-info.js';
import * as ns from '../../src/neutron/schemas.js';

// Property-based tests (fast-check) over the pure modules: whatever a user or a
// hostile Neutron puts in a name, MAC, IP, CIDR, device name or protocol, the
// libvirt XML stays well-formed with the value as text, the nft ruleset carries
// only validated tokens, and every refusal is a typed error naming the field.
//
// Runs are seeded from NT_FC_SEED when set, so a failure prints a replayable seed.

const seed = process.env.NT_FC_SEED ? Number(process.env.NT_FC_SEED) : undefined;
const runs = (numRuns: number): { numRuns: number; seed?: number } => ({
  numRuns,
  ...(seed !== undefined ? { seed } : {}),
});

// ------------------------------------------------------------ arbitraries

const HOSTILE_STRINGS = [
  '',
  ' ',
  '"',
  "'",
  '}',
  '{',
  ';',
  '\n',
  '\r\n',
  '\t',
  '\0',
  '#',
  '$x',
  '@set',
  '\\',
  '..',
  '.',
  '../../etc/passwd',
  '/etc/passwd',
  '%2e%2e%2f',
  '<',
  '&amp;',
  ']]>',
  '<!--',
  '<![CDATA[x]]>',
  '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
  '</nova:name><evil/>',
  '\u202e',
  '\u2028',
  '\uFEFF',
  '\uFFFE',
  '\uFFFF',
  '\uD800',
  '\uDFFF',
  '\u{1F600}',
  'Ａ',
  'e\u0301',
  'a'.repeat(16),
  'a'.repeat(300),
  'tap0"; flush ruleset; "',
  'br-int accept\ntable inet evil {',
  '00:11:22:33:44:55 accept',
  '00:11:22:33:44:55\n',
  ' 00:11:22:33:44:55',
  '00-11-22-33-44-55',
  '0011.2233.4455',
  'ff:ff:ff:ff:ff:ff',
  '01:00:5e:00:00:01',
  'FA:16:3E:00:00:01',
  '10.0.0.1 accept',
  '10.0.0.1\n',
  '10.0.0.256',
  '010.0.0.1',
  '0x0a.0.0.1',
  '1.2.3',
  '10.0.0.1/33',
  '10.0.0.1/-1',
  '10.0.0.1/ 24',
  '10.0.0.1/024',
  '10.0.0.0/8/8',
  '::1/129',
  'fe80::1%eth0',
  'fe80::1%25eth0',
  '::ffff:10.0.0.1',
  '[::1]',
  'tcp',
  'TCP',
  'tcp ',
  'any',
  '256',
  '-1',
  '1e3',
  '6.0',
  'icmp\n',
  'ingress',
  'IPv4',
];

/** Anything a hostile or broken sender could put in a string field. */
const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.string({ unit: 'grapheme', maxLength: 24 }),
  // Single UTF-16 code units, lone surrogates included.
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
  fc.string({ unit: fc.constantFrom(...'";{}\n #$@\\/<>&|!`\'%:./-0aAfF'), maxLength: 20 }),
);

/** A hostile value of any JSON type (wrong types included). */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: hostileString, weight: 6 },
  {
    arbitrary: fc.constantFrom(null, undefined, true, 0, -1, 1.5, 65536, Number.POSITIVE_INFINITY, Number.NaN, [], {}, [
      'x',
    ]),
    weight: 1,
  },
);

/** Mostly valid, sometimes hostile. */
const mixed = <T>(valid: fc.Arbitrary<T>, hostileWeight = 1, validWeight = 8): fc.Arbitrary<T> =>
  fc.oneof(
    { arbitrary: valid, weight: validWeight },
    { arbitrary: hostileValue as fc.Arbitrary<T>, weight: hostileWeight },
  );

const hex2 = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const validMac = fc
  .tuple(fc.integer({ min: 0, max: 255 }), hex2, hex2, hex2, hex2, hex2)
  .map(([b0, ...rest]) => [(b0 & 0xfe).toString(16).padStart(2, '0'), ...rest].join(':'));
const validIpv4 = fc.ipV4();
const validIpv6 = fc.ipV6();
const validCidr4 = fc.tuple(validIpv4, fc.integer({ min: 0, max: 32 })).map(([a, l]) => `${a}/${l}`);
const validCidr6 = fc.tuple(validIpv6, fc.integer({ min: 0, max: 128 })).map(([a, l]) => `${a}/${l}`);
/** Device names as hosts have them (tap<port>, br-int, qbr...): a letter first. */
const validDevice = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_.-]{0,14}$/);
const validUuid = fc.uuid();
const validProtocol = fc.constantFrom(
  null,
  'tcp',
  'udp',
  'icmp',
  'icmpv6',
  'ipv6-icmp',
  'any',
  'sctp',
  'gre',
  '6',
  '17',
  '58',
  '132',
  '255',
  '0',
);
const validPort = fc.integer({ min: 0, max: 255 });
/** Weight of the valid choice when a record has many fields: about one hostile value per record. */
const RARE = 30;

const sgRule: fc.Arbitrary<SecurityGroupRule> = fc
  .record({
    direction: mixed(fc.constantFrom('ingress' as const, 'egress' as const), 1, RARE),
    ethertype: mixed(fc.constantFrom('IPv4' as const, 'IPv6' as const), 1, RARE),
    protocol: mixed(validProtocol, 1, RARE),
    range: fc.option(fc.tuple(validPort, validPort), { nil: null }),
    portRangeMin: mixed(fc.constant(undefined), 1, RARE),
    portRangeMax: mixed(fc.constant(undefined), 1, RARE),
    remoteIpPrefix: mixed(fc.option(fc.oneof(validCidr4, validCidr6, validIpv4, validIpv6), { nil: null }), 1, RARE),
  })
  .map(({ range, portRangeMin, portRangeMax, ...rule }) => {
    // Ports as Neutron keeps them (min <= max), unless a hostile value replaces one.
    const [lo, hi] = range ? [range[0] ?? 0, range[1] ?? 0].sort((a, b) => a - b) : [null, null];
    return {
      ...rule,
      portRangeMin: portRangeMin === undefined ? (lo ?? null) : portRangeMin,
      portRangeMax: portRangeMax === undefined ? (hi ?? null) : portRangeMax,
    } as SecurityGroupRule;
  });

/** A hybrid-plugged, nftables-filtered plan as vif-plug would hand it over, with hostile values mixed in. */
const nftPlan: fc.Arbitrary<VifPlan> = fc
  .record({
    id: validUuid,
    address: mixed(validMac, 1, RARE),
    tap: mixed(validDevice, 1, RARE),
    qbr: mixed(validDevice, 1, RARE),
    qvb: mixed(validDevice, 1, RARE),
    ips: fc.array(mixed(fc.oneof(validIpv4, validIpv6), 1, RARE), { maxLength: 3 }),
    pairs: fc.array(
      fc.record({
        ipAddress: mixed(fc.oneof(validIpv4, validIpv6, validCidr4, validCidr6), 1, RARE),
        macAddress: mixed(validMac, 1, RARE),
      }),
      { maxLength: 2 },
    ),
    rules: fc.array(sgRule, { maxLength: 4 }),
  })
  .map(({ id, address, tap, qbr, qvb, ips, pairs, rules }) => {
    const vif: Vif = {
      id,
      address,
      devname: tap,
      type: 'ovs',
      vnicType: 'normal',
      network: {
        id: '0b5e1c5e-6b1f-4f57-9a57-8f3a1c2d3e40',
        label: 'net',
        bridge: 'br-int',
        mtu: 1500,
        subnets: [
          {
            id: '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e51',
            cidr: '10.0.0.0/24',
            gateway: null,
            ips: ips.map((a) => ({ address: a, version: 4 as const })),
          },
        ],
      },
      active: false,
      details: { ovsHybridPlug: true, portFilter: false },
      portSecurityEnabled: true,
      allowedAddressPairs: pairs,
      securityGroupRules: rules,
    };
    return {
      vif,
      kind: 'ovs-hybrid',
      bridge: 'br-int',
      tap,
      hybrid: { qbr, qvb, qvo: 'qvo0' },
      firewall: 'nftables',
    } satisfies VifPlan;
  });

// ------------------------------------------------------------ independent validators

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const DEVICE_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const isIpv4 = (s: string) => isIP(s) === 4 && /^[0-9.]+$/.test(s);
const isIpv6 = (s: string) => isIP(s) === 6 && /^[0-9a-f:.]+$/.test(s);
function isPrefix(s: string, v: 4 | 6): boolean {
  const [addr, len, ...rest] = s.split('/');
  if (rest.length || addr === undefined) return false;
  if (!(v === 4 ? isIpv4(addr) : isIpv6(addr))) return false;
  return len === undefined || (/^\d{1,3}$/.test(len) && Number(len) <= (v === 4 ? 32 : 128));
}
const PROTO_NAMES = new Set(['tcp', 'udp', 'dccp', 'sctp', 'udplite', 'icmp', 'icmpv6']);

/**
 * The ruleset, read token by token: printable ASCII only, balanced braces and
 * quotes, and every value after a keyword is of the kind that keyword takes.
 */
function assertRulesetTokens(text: string): void {
  assert.match(text, /^[\x20-\x7e\n]*$/, 'only printable ASCII and newlines');
  let depth = 0;
  for (const [n, line] of text.split('\n').entries()) {
    const where = `line ${n + 1}: ${JSON.stringify(line)}`;
    if (n === 0) {
      assert.match(line, /^# nova-temporal firewall of instance [0-9a-fA-F-]{36}$/, where);
      continue;
    }
    for (const c of line) {
      if (c === '{') depth++;
      if (c === '}') depth--;
      assert.ok(depth >= 0, `${where}: unbalanced braces`);
    }
    assert.equal((line.match(/"/g) ?? []).length % 2, 0, `${where}: unbalanced quotes`);
    for (const [, q] of line.matchAll(/"([^"]*)"/g)) assert.match(q!, /^[A-Za-z0-9_.\-: ]*$/, where);
    if (line.includes(';'))
      assert.match(line, /^ {4}type filter hook (prerouting|forward) priority (-300|filter); policy accept;$/, where);
    assert.ok(!line.includes('#'), `${where}: no comment markers`);
    for (const [, mac] of line.matchAll(/\bether saddr (\S+)/g)) assert.match(mac!, MAC_RE, where);
    for (const [, mac] of line.matchAll(/\barp saddr ether (\S+)/g)) assert.match(mac!, MAC_RE, where);
    for (const [, ip] of line.matchAll(/\barp saddr ip (\S+)/g)) assert.ok(isPrefix(ip!, 4), where);
    for (const [, ip] of line.matchAll(/\bip [sd]addr (\S+)/g)) assert.ok(isPrefix(ip!, 4), where);
    for (const [, ip] of line.matchAll(/\bip6 [sd]addr (\S+)/g))
      assert.ok(ip === 'ff02::/16' || isPrefix(ip!, 6), where);
    for (const [, dev] of line.matchAll(/\biifname "([^"]*)"/g)) assert.match(dev!, DEVICE_RE, where);
    for (const [, chain] of line.matchAll(/\b(?:chain|jump) (\S+)/g)) {
      assert.ok(/^(prerouting|forward)$/.test(chain!) || /^[A-Za-z0-9_.-]{1,15}-[saio]$/.test(chain!), where);
    }
    for (const [, t] of line.matchAll(/\btable (?:bridge|inet) (\S+)/g)) assert.match(t!, /^nt-[0-9a-f-]{36}$/, where);
    for (const [, p] of line.matchAll(/\bdport (\S+)/g)) {
      const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(p!);
      assert.ok(m && Number(m[1]) <= 65535 && Number(m[2] ?? 0) <= 65535, where);
    }
    for (const [, p] of line.matchAll(/\bicmp(?:v6)? (?:type|code) (\S+)/g))
      assert.ok(/^(\d{1,3}|\{)$/.test(p!), where);
    for (const [, p] of line.matchAll(/\bl4proto (\S+)/g))
      assert.ok(PROTO_NAMES.has(p!) || /^\d{1,3}$/.test(p!), where);
  }
  assert.equal(depth, 0, 'balanced braces');
}

/** XML 1.0 section 2.2 Char: what libxml2 (libvirt's parser) accepts in a document. */
function xmlCharsOk(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    const ok =
      c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || c >= 0x10000;
    if (!ok) return false;
  }
  return true;
}

/**
 * The text of <nova:name>, decoded exactly once as an XML parser would (xmlbuilder2's
 * own parser decodes `&amp;#60;` twice, so it cannot judge this). Throws when the
 * element holds markup, a bare `&` or an entity XML does not predefine.
 */
function novaNameText(xml: string): string {
  const m = /<nova:name>([^<]*)<\/nova:name>/.exec(xml);
  if (!m) throw new Error('no <nova:name> element holding text only');
  const predefined: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };
  return m[1]!.replace(
    /&(?:(lt|gt|amp|quot|apos)|#(\d+)|#x([0-9a-fA-F]+));|&/g,
    (all, named?: string, dec?: string, hex?: string) => {
      if (named) return predefined[named]!;
      if (dec === undefined && hex === undefined)
        throw new Error(`not well-formed: ${JSON.stringify(m[1])} has a bare & or an undefined entity`);
      const c = dec !== undefined ? Number(dec) : parseInt(hex!, 16);
      const ch = c <= 0x10ffff ? String.fromCodePoint(c) : '';
      if (!ch || !xmlCharsOk(ch)) throw new Error(`not well-formed: ${all} is not an XML character`);
      return ch;
    },
  );
}

function guest(name: string, over: Partial<GuestConfig> = {}): GuestConfig {
  return {
    instance: {
      uuid: '6f1e3b2a-9c4d-4e5f-8a7b-1c2d3e4f5a6b',
      name,
      host: 'compute-1',
      flavor: { vcpus: 1, ramMb: 64, diskGb: 1 },
      imageRef: 'cirros',
      ports: [],
    },
    virtType: 'kvm',
    diskPath: '/var/lib/nova-temporal/instances/6f1e3b2a-9c4d-4e5f-8a7b-1c2d3e4f5a6b/disk',
    consoleLogPath: '/var/lib/nova-temporal/instances/6f1e3b2a-9c4d-4e5f-8a7b-1c2d3e4f5a6b/console.log',
    networkInfo: [],
    ...over,
  };
}

/** Element names in document order: any injected markup changes this list. */
function elementNames(xml: string): string[] {
  const names: string[] = [];
  create(xml).each((n) => names.push(n.node.nodeName), false, true);
  return names.filter((n) => n !== '#text');
}
const BASELINE_ELEMENTS = elementNames(buildDomainXml(guest('x')));

/** Whether the control-plane API accepts this server name at registration. */
function apiAcceptsName(name: string): boolean {
  return registerServerBody.safeParse({
    server: { name, flavor: { vcpus: 1, ram: 64, disk: 1 }, imageRef: 'cirros' },
  }).success;
}

/** A strict XML parser on the documents, when this host has one (libxml2's xmllint, as libvirt uses). */
function strictParse(docs: string[]): { tool: string; failures: string[] } | null {
  const have = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
  const dir = mkdtempSync(path.join(tmpdir(), 'nt-xml-'));
  try {
    const files = docs.map((d, i) => {
      const f = path.join(dir, `${i}.xml`);
      writeFileSync(f, d, 'utf8');
      return f;
    });
    const failures: string[] = [];
    if (have('xmllint', ['--version'])) {
      for (const [i, f] of files.entries()) {
        const r = spawnSync('xmllint', ['--noout', '--nonet', f], { encoding: 'utf8' });
        if (r.status !== 0)
          failures.push(
            `${JSON.stringify(docs[i]!.match(/<nova:name>(.*)<\/nova:name>/)?.[1])}: ${r.stderr.split('\n')[0]}`,
          );
      }
      return { tool: 'xmllint', failures };
    }
    if (have('python3', ['-c', 'import xml.parsers.expat'])) {
      const script =
        'import sys,xml.parsers.expat as e\nfor f in sys.argv[1:]:\n  p=e.ParserCreate()\n  try: p.Parse(open(f,"rb").read(),True)\n  except e.ExpatError as x: print(f, x)';
      const out = execFileSync('python3', ['-c', script, ...files], { encoding: 'utf8' });
      for (const line of out.split('\n').filter(Boolean)) failures.push(line);
      return { tool: 'expat', failures };
    }
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const nameArb: fc.Arbitrary<string> = fc.oneof(
  hostileString,
  fc.string({
    unit: fc.constantFrom(
      '<',
      '>',
      '&',
      '"',
      "'",
      ']]>',
      '<!--',
      '&lt;',
      '&#',
      '60',
      ';',
      'e',
      'a',
      ' ',
      '\uFFFE',
      '\uD800',
      'é',
    ),
    minLength: 1,
    maxLength: 16,
  }),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 64 }),
);

// ------------------------------------------------------------ domain XML

test('domain XML: every name the API accepts comes back as text of a well-formed document', () => {
  fc.assert(
    fc.property(nameArb, (name) => {
      fc.pre(apiAcceptsName(name));
      const xml = buildDomainXml(guest(name));
      assert.ok(
        xmlCharsOk(xml),
        `not an XML 1.0 document: name ${JSON.stringify(name)} puts a character outside XML's Char range into it`,
      );
      assert.deepEqual(elementNames(xml), BASELINE_ELEMENTS, 'no markup injected');
      assert.equal(novaNameText(xml), name, 'the name round-trips as text');
    }),
    runs(2000),
  );
});

test('domain XML: names with markup are escaped, never interpreted (checked by a strict XML parser)', (t) => {
  const names = [
    '<evil/>',
    '</nova:name><nova:flavor>',
    'a & b',
    '&amp;&lt;',
    '&#60;b&#62;',
    ']]>',
    '<!--x-->',
    '<![CDATA[x]]>',
    '"\'"',
    '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>&e;',
    'héllo wörld ☃ \u{1F600}',
    'e\u0301',
    '\u202eevil',
    'x\u00a0y',
  ];
  for (const n of names) assert.ok(apiAcceptsName(n), `the API accepts ${JSON.stringify(n)}`);
  const result = strictParse(names.map((n) => buildDomainXml(guest(n))));
  if (!result) return t.skip('no strict XML parser here (xmllint or python3 expat)');
  assert.deepEqual(result.failures, [], `${result.tool} rejects documents`);
});

test('domain XML: a name the API accepts is one libvirt (libxml2) can parse', (t) => {
  // Characters outside XML 1.0's Char range that the name schema lets through:
  // libvirt's defineXML refuses such a document ("Char 0xFFFE out of allowed range").
  const candidates = ['x\uFFFEy', 'x\uFFFFy', 'x\uD800y', 'x\uDFFFy'];
  const accepted = candidates.filter(apiAcceptsName);
  const result = strictParse(accepted.map((n) => buildDomainXml(guest(n))));
  if (!result) return t.skip('no strict XML parser here (xmllint or python3 expat)');
  assert.deepEqual(
    result.failures,
    [],
    `names accepted by POST /v2.1/servers produce domain XML that ${result.tool} rejects; ` +
      'schemas.ts must refuse them (or domain-xml.ts must throw a typed error)',
  );
});

test('domain XML: MAC, device and MTU of a vif come from validated values only', () => {
  fc.assert(
    fc.property(fc.uuid(), validMac, fc.integer({ min: 68, max: 65535 }), (id, mac, mtu) => {
      const vif: Vif = {
        id,
        address: mac,
        devname: tapName(id),
        type: 'ovs',
        vnicType: 'normal',
        network: { id, label: '<x>', bridge: 'br-int', mtu, subnets: [] },
        active: true,
        details: { ovsHybridPlug: false, portFilter: true },
        portSecurityEnabled: true,
        allowedAddressPairs: [],
        securityGroupRules: [],
      };
      const plan = planVif(vif, { firewallDriver: 'nftables', integrationBridge: 'br-int' });
      const xml = buildDomainXml(guest('vm', { networkInfo: [plan.vif] }));
      assert.ok(xmlCharsOk(xml));
      assert.ok(xml.includes(`<mac address="${mac}"/>`));
      assert.ok(xml.includes(`<target dev="${tapName(id)}" managed="no"/>`));
      assert.ok(!xml.includes('<x>'), 'the network label never reaches the XML unescaped');
    }),
    runs(300),
  );
});

// ------------------------------------------------------------ nft ruleset

test('nft ruleset: hostile plan values throw InvalidVifValue naming the field, or only validated tokens are written', () => {
  let written = 0;
  let refused = 0;
  const samples: string[] = [];
  fc.assert(
    fc.property(mixed(validUuid, 1, 12), fc.array(nftPlan, { minLength: 1, maxLength: 3 }), (uuid, plans) => {
      let text: string;
      try {
        text = buildRuleset(uuid, plans);
      } catch (err) {
        assert.ok(err instanceof InvalidVifValue, `a typed error, not ${String(err)}`);
        assert.ok(err.field.length > 0 && err.message.startsWith(`${err.field}: `), err.message);
        assert.match(err.field, /^(instanceUuid|vif "[^"]*": [A-Za-z]+)/, 'the field names the vif and its attribute');
        refused++;
        return;
      }
      written++;
      assertRulesetTokens(text);
      if (samples.length < 25) samples.push(text);
    }),
    runs(800),
  );
  assert.ok(written > 50 && refused > 50, `both outcomes exercised (written ${written}, refused ${refused})`);
  checkWithNft(samples);
});

/** Whether `nft -c` (check only, nothing is applied) can run here: nft installed and CAP_NET_ADMIN. */
function nftCanCheck(): boolean {
  return spawnSync('nft', ['-c', '-f', '-'], { input: 'table inet nt-probe {}\n', encoding: 'utf8' }).status === 0;
}

/** nft's own parser on written rulesets: the lines it refuses (empty when nft cannot run here). */
function nftRefusals(rulesets: string[]): string[] {
  if (!nftCanCheck()) return [];
  const refused = new Set<string>();
  for (const r of rulesets) {
    const res = spawnSync('nft', ['-c', '-f', '-'], { input: r, encoding: 'utf8' });
    if (res.status !== 0) refused.add(res.stderr.split('\n').slice(0, 2).join(' | ').replace(/\s+/g, ' '));
  }
  return [...refused];
}

function checkWithNft(rulesets: string[]): void {
  const refused = nftRefusals(rulesets);
  assert.deepEqual(refused, [], 'nft -c refuses rulesets that buildRuleset wrote from values it had validated');
}

test('nft ruleset: an address checkCidr accepts is one nft can parse', (t) => {
  if (!nftCanCheck()) return t.skip('nft -c cannot run here');
  // IPv6 in mixed notation (embedded dotted quad) passes isIPv6 and the Neutron
  // schemas; nft's scanner takes only the ::a.b.c.d and ::ffff:a.b.c.d forms.
  const addresses = [
    '::ffff:10.0.0.1',
    '::10.0.0.1/120',
    '64:ff9b::10.0.0.1',
    '1:2:3:4:5:6:10.0.0.1',
    'fd00::1:10.0.0.1/128',
  ];
  const written: string[] = [];
  for (const ip of addresses) {
    const vif: Vif = {
      id: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
      address: 'fa:16:3e:00:00:01',
      devname: tapName('a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d'),
      type: 'ovs',
      vnicType: 'normal',
      network: { id: ID.net, label: 'net', bridge: 'br-int', mtu: 1500, subnets: [] },
      active: false,
      details: { ovsHybridPlug: true, portFilter: false },
      portSecurityEnabled: true,
      allowedAddressPairs: [{ ipAddress: ip, macAddress: 'fa:16:3e:00:00:01' }],
      securityGroupRules: [],
    };
    assert.ok(
      ns.port.shape.allowed_address_pairs.safeParse([{ ip_address: ip }]).success,
      `Neutron schema accepts ${ip}`,
    );
    try {
      written.push(
        buildRuleset('6f1e3b2a-9c4d-4e5f-8a7b-1c2d3e4f5a6b', [
          planVif(vif, { firewallDriver: 'nftables', integrationBridge: 'br-int' }),
        ]),
      );
    } catch (err) {
      assert.ok(err instanceof InvalidVifValue, String(err)); // refusing it up front is fine
    }
  }
  assert.deepEqual(
    nftRefusals(written),
    [],
    'an allowed address pair that validation accepted makes `nft -f` fail at power-on',
  );
});

test('nft ruleset: a device name checkDevice accepts is one nft can use in a chain name', (t) => {
  if (!nftCanCheck()) return t.skip('nft -c cannot run here');
  // planVif only hands over tap<port-id>, so this is defence in depth: buildRuleset's
  // own checkDevice lets through names that are not nft identifiers (jump 9-s).
  const written: string[] = [];
  for (const tap of ['tap0', '9tap', '-tap', '.tap', '_tap']) {
    const plan: VifPlan = {
      vif: {
        id: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
        address: 'fa:16:3e:00:00:01',
        devname: tap,
        type: 'ovs',
        vnicType: 'normal',
        network: { id: ID.net, label: 'net', bridge: 'br-int', mtu: 1500, subnets: [] },
        active: false,
        details: { ovsHybridPlug: true, portFilter: false },
        portSecurityEnabled: true,
        allowedAddressPairs: [],
        securityGroupRules: [],
      },
      kind: 'ovs-hybrid',
      bridge: 'br-int',
      tap,
      hybrid: { qbr: 'qbr0', qvb: 'qvb0', qvo: 'qvo0' },
      firewall: 'nftables',
    };
    try {
      written.push(buildRuleset('6f1e3b2a-9c4d-4e5f-8a7b-1c2d3e4f5a6b', [plan]));
    } catch (err) {
      assert.ok(err instanceof InvalidVifValue, String(err));
    }
  }
  assert.deepEqual(nftRefusals(written), [], 'buildRuleset writes chain names nft cannot parse');
});

test('nft ruleset: the removal ruleset takes a UUID only', () => {
  fc.assert(
    fc.property(mixed(validUuid, 1, 1), (uuid) => {
      try {
        const text = removalRuleset(uuid);
        assert.match(uuid, /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/);
        assert.match(
          text,
          /^(table (bridge|inet) nt-[0-9a-f-]{36}\ndelete table (bridge|inet) nt-[0-9a-f-]{36}\n){2}$/,
        );
      } catch (err) {
        assert.ok(err instanceof InvalidVifValue && err.field === 'instanceUuid', String(err));
      }
    }),
    runs(500),
  );
});

// ------------------------------------------------------------ vif plugging

const vifArb: fc.Arbitrary<Vif> = fc
  .record({
    id: mixed(validUuid, 1, 6),
    address: mixed(validMac, 1, 6),
    ownTap: fc.boolean(),
    devname: hostileString,
    type: fc.constantFrom('ovs' as const, 'bridge' as const),
    bridge: mixed(fc.oneof(validDevice, fc.constant('')), 1, 6),
    mtu: mixed(fc.integer({ min: 68, max: 65535 }), 1, 6),
    ovsHybridPlug: fc.boolean(),
    portFilter: fc.boolean(),
    portSecurityEnabled: fc.boolean(),
  })
  .map((r) => ({
    id: r.id,
    address: r.address,
    devname: r.ownTap && typeof r.id === 'string' ? tapName(r.id) : r.devname,
    type: r.type,
    vnicType: 'normal',
    network: { id: 'n', label: 'l', bridge: r.bridge, mtu: r.mtu, subnets: [] },
    active: true,
    details: { ovsHybridPlug: r.ovsHybridPlug, portFilter: r.portFilter },
    portSecurityEnabled: r.portSecurityEnabled,
    allowedAddressPairs: [],
    securityGroupRules: [],
  }));

test('vif plugging: a plan has only valid device names and a consistent plug and firewall', () => {
  const drivers: FirewallDriver[] = ['nftables', 'openvswitch', 'noop'];
  fc.assert(
    fc.property(vifArb, fc.constantFrom(...drivers), (vif, driver) => {
      let plan: VifPlan;
      try {
        plan = planVif(vif, { firewallDriver: driver, integrationBridge: 'br-int' });
      } catch (err) {
        assert.ok(err instanceof InvalidVifValue, String(err));
        assert.ok(err.field.startsWith(`vif ${JSON.stringify(vif.id)}: `), err.field);
        return;
      }
      assert.match(plan.vif.id, /^[0-9a-fA-F-]{36}$/);
      assert.match(plan.vif.address, /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/);
      assert.equal(parseInt(plan.vif.address.slice(0, 2), 16) & 1, 0, 'unicast');
      assert.equal(plan.tap, tapName(vif.id));
      for (const dev of [plan.tap, plan.bridge, ...Object.values(plan.hybrid ?? {})]) assert.match(dev, DEVICE_RE);
      assert.equal(plan.kind, plugKind(vif, driver));
      assert.equal(plan.firewall, firewallFor(vif, driver));
      if (vif.type === 'bridge') assert.equal(plan.kind, 'bridge');
      if (plan.kind === 'ovs-hybrid') assert.deepEqual(plan.hybrid, hybridDeviceNames(vif.id));
      else assert.equal(plan.hybrid, null);
      if (plan.firewall === 'nftables') assert.equal(plan.kind, 'ovs-hybrid', 'nft filters only hybrid-plugged ports');
      if (driver === 'noop' || vif.details.portFilter || !vif.portSecurityEnabled) assert.equal(plan.firewall, null);
    }),
    runs(1500),
  );
});

// ------------------------------------------------------------ instance state machine

const vmStates: VmState[] = ['active', 'stopped', 'error', 'building'];
const taskStates: TaskState[] = [null, 'powering-on'];
const transitions: PowerOnTransition[] = ['begin', 'finish', 'revert'];
const statusArb = fc.record({ vmState: fc.constantFrom(...vmStates), taskState: fc.constantFrom(...taskStates) });

test('instance state: a transition applies exactly when allowed and never mutates its input', () => {
  fc.assert(
    fc.property(statusArb, fc.constantFrom(...transitions), (status, t) => {
      const before = { ...status };
      if (canTransition(status, t)) {
        const to = applyTransition('u', status, t);
        assert.notEqual(to, status);
        if (t === 'begin') assert.deepEqual(to, { vmState: 'stopped', taskState: 'powering-on' });
        if (t === 'finish') assert.deepEqual(to, { vmState: 'active', taskState: null });
        if (t === 'revert') assert.deepEqual(to, { vmState: 'stopped', taskState: null });
      } else {
        assert.throws(() => applyTransition('u', status, t), InstanceInvalidState);
      }
      assert.deepEqual({ ...status }, before);
      assert.ok(['ACTIVE', 'SHUTOFF', 'ERROR', 'BUILD'].includes(serverStatus(status.vmState)));
    }),
    runs(300),
  );
});

test('instance state: from stopped, any sequence of transitions stays in {stopped, powering-on, active}', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...transitions), { maxLength: 30 }), (seq) => {
      let s: InstanceStatus = { vmState: 'stopped', taskState: null };
      let begins = 0;
      for (const t of seq) {
        if (!canTransition(s, t)) continue;
        s = applyTransition('u', s, t);
        if (t === 'begin') begins++;
        const key = `${s.vmState}/${s.taskState}`;
        assert.ok(['stopped/null', 'stopped/powering-on', 'active/null'].includes(key), key);
        // A task in progress means a begin was applied and not yet finished or reverted.
        assert.equal(s.taskState === 'powering-on', t === 'begin');
      }
      // Once active, nothing on the power-on path moves it again.
      if (s.vmState === 'active') for (const t of transitions) assert.equal(canTransition(s, t), false);
      assert.ok(begins <= seq.length);
    }),
    runs(500),
  );
});

// ------------------------------------------------------------ paths

test('image cache: instance paths never leave instances_path, base images are content-named', () => {
  const root = '/var/lib/nova-temporal/instances';
  fc.assert(
    fc.property(fc.oneof(validUuid, hostileString), hostileString, (id, imageId) => {
      try {
        const dir = instanceDir(root, id);
        assert.equal(path.dirname(dir), root);
        assert.ok(dir.startsWith(`${root}/`) && !dir.slice(root.length + 1).includes('/'), dir);
      } catch (err) {
        assert.match(String(err), /escapes instances_path/);
      }
      assert.match(baseImagePath(root, imageId), /^\/var\/lib\/nova-temporal\/instances\/_base\/[0-9a-f]{40}$/);
    }),
    runs(1000),
  );
  for (const bad of ['..', '.', '', '../x', 'a/../../b', '/etc']) {
    assert.throws(() => instanceDir(root, bad), /escapes instances_path/, bad);
  }
});

// ------------------------------------------------------------ Neutron answers

test('Neutron schemas: a value that passes is a plain MAC / IP / CIDR / device name / protocol', () => {
  const cases: [
    string,
    fc.Arbitrary<string>,
    { safeParse(v: unknown): { success: boolean } },
    (s: string) => boolean,
  ][] = [
    [
      'mac',
      mixed(
        validMac.map((m) => m.toLowerCase()),
        3,
        1,
      ),
      ns.macAddress,
      (s) => MAC_RE.test(s),
    ],
    [
      'ip',
      mixed(fc.oneof(validIpv4, validIpv6), 3, 1),
      ns.ipAddress,
      (s) => isIpv4(s) || (isIP(s) === 6 && /^[0-9a-fA-F:.]+$/.test(s)),
    ],
    [
      'cidr',
      mixed(fc.oneof(validCidr4, validCidr6), 3, 1),
      ns.cidr,
      (s) => isPrefix(s, 4) || isPrefix(s.toLowerCase(), 6),
    ],
    ['device', mixed(validDevice, 3, 1), ns.deviceName, (s) => /^[A-Za-z0-9_-]{1,15}$/.test(s)],
    ['uuid', mixed(validUuid, 3, 1), ns.uuid, (s) => /^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$/.test(s)],
  ];
  for (const [what, arb, schema, ok] of cases) {
    fc.assert(
      fc.property(arb, (value) => {
        if (schema.safeParse(value).success) {
          assert.equal(typeof value, 'string', `${what}: only strings pass`);
          assert.ok(ok(value), `${what}: ${JSON.stringify(value)} passed the schema`);
          assert.ok(!/[\s"'{};#<>&\\]/.test(value), `${what}: ${JSON.stringify(value)} carries a metacharacter`);
        }
      }),
      runs(1500),
    );
  }
});

const ID = {
  net: '0b5e1c5e-6b1f-4f57-9a57-8f3a1c2d3e40',
  sub4: '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e51',
  sub6: '2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f62',
  port: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d',
  sg: 'c3d4e5f6-a7b8-4c9d-8e1f-2a3b4c5d6e7f',
  rule: 'd4e5f6a7-b8c9-4d0e-9f2a-3b4c5d6e7f80',
};

/** Neutron's answers for one port, each security-relevant field valid or hostile. */
const neutronAnswers = fc.record({
  port: fc.record({
    id: fc.constant(ID.port),
    network_id: fc.constant(ID.net),
    name: mixed(fc.constant('p1'), 1, RARE),
    mac_address: mixed(validMac, 1, RARE),
    admin_state_up: mixed(fc.boolean(), 1, RARE),
    status: mixed(fc.constantFrom('ACTIVE', 'DOWN', 'BUILD'), 1, RARE),
    fixed_ips: fc.array(
      fc.record({
        subnet_id: fc.constantFrom(ID.sub4, ID.sub6),
        ip_address: mixed(fc.oneof(validIpv4, validIpv6), 1, RARE),
      }),
      { maxLength: 2 },
    ),
    allowed_address_pairs: fc.array(
      fc.record(
        {
          ip_address: mixed(fc.oneof(validIpv4, validCidr4, validIpv6, validCidr6), 1, RARE),
          mac_address: mixed(validMac, 1, RARE),
        },
        { requiredKeys: ['ip_address'] },
      ),
      { maxLength: 2 },
    ),
    security_groups: fc.constant([ID.sg]),
    port_security_enabled: mixed(fc.constant(true), 1, RARE),
    'binding:host_id': mixed(fc.constant('compute-1'), 1, RARE),
    'binding:vif_type': mixed(fc.constantFrom('ovs', 'bridge'), 1, RARE),
    'binding:vif_details': fc.record({
      ovs_hybrid_plug: fc.constant(true),
      port_filter: fc.constant(false),
      bridge_name: mixed(
        validDevice.filter((d) => /^[A-Za-z0-9_-]+$/.test(d)),
        1,
        RARE,
      ),
    }),
  }),
  network: fc.record({
    id: fc.constant(ID.net),
    name: mixed(fc.constant('private'), 1, RARE),
    status: fc.constant('ACTIVE'),
    admin_state_up: fc.constant(true),
    mtu: mixed(fc.integer({ min: 68, max: 65535 }), 1, RARE),
    subnets: fc.constant([ID.sub4, ID.sub6]),
  }),
  rules: fc.array(
    fc.record({
      id: fc.constant(ID.rule),
      security_group_id: fc.constant(ID.sg),
      direction: mixed(fc.constantFrom('ingress', 'egress'), 1, RARE),
      ethertype: fc.constant('IPv4'),
      protocol: mixed(fc.constantFrom(null, 'tcp', 'udp', 'icmp', 'any', '6', '17'), 1, RARE),
      port_range_min: mixed(fc.option(fc.integer({ min: 0, max: 255 }), { nil: null }), 1, RARE),
      port_range_max: mixed(fc.option(fc.integer({ min: 255, max: 65535 }), { nil: null }), 1, RARE),
      remote_ip_prefix: mixed(fc.option(validCidr4, { nil: null }), 1, RARE),
      remote_group_id: fc.constant(null),
    }),
    { maxLength: 3 },
  ),
});

test('Neutron answers: hostile values are refused with a typed error naming the field; what passes plugs and filters cleanly', () => {
  let clean = 0;
  const samples: string[] = [];
  const refusedAt: Record<string, number> = {};
  fc.assert(
    fc.property(neutronAnswers, ({ port, network, rules }) => {
      let answers: NeutronAnswers;
      try {
        const subnets4 = {
          id: ID.sub4,
          network_id: ID.net,
          ip_version: 4,
          cidr: '10.0.0.0/24',
          gateway_ip: '10.0.0.1',
        };
        const subnets6 = { id: ID.sub6, network_id: ID.net, ip_version: 6, cidr: 'fd00::/64', gateway_ip: null };
        answers = {
          ports: parseAnswer('GET ports', ns.portsBody, JSON.stringify({ ports: [port] })).ports,
          networks: [parseAnswer('GET network', ns.networkBody, JSON.stringify({ network })).network],
          subnets: parseAnswer('GET subnets', ns.subnetsBody, JSON.stringify({ subnets: [subnets4, subnets6] }))
            .subnets,
          securityGroups: parseAnswer(
            'GET security-groups',
            ns.securityGroupsBody,
            JSON.stringify({ security_groups: [{ id: ID.sg, name: 'sg', security_group_rules: rules }] }),
          ).security_groups,
        };
      } catch (err) {
        assert.ok(err instanceof NeutronResponseInvalid, `typed error, not ${String(err)}`);
        assert.ok(err.field !== '(body)' || /JSON/.test(err.problem), err.message);
        refusedAt['schema'] = (refusedAt['schema'] ?? 0) + 1;
        return;
      }
      let xml: string;
      let ruleset: string;
      try {
        const info = buildNetworkInfo([ID.port], answers, { integrationBridge: 'br-int' });
        const plans = info.map((v) => planVif(v, { firewallDriver: 'nftables', integrationBridge: 'br-int' }));
        ruleset = buildRuleset('6f1e3b2a-9c4d-4e5f-8a7b-1c2d3e4f5a6b', plans);
        xml = buildDomainXml(guest('vm', { networkInfo: info }));
      } catch (err) {
        assert.ok(err instanceof NetworkInfoError || err instanceof InvalidVifValue, `typed error, not ${String(err)}`);
        refusedAt[(err as Error).name] = (refusedAt[(err as Error).name] ?? 0) + 1;
        return;
      }
      clean++;
      assertRulesetTokens(ruleset);
      if (samples.length < 25) samples.push(ruleset);
      assert.ok(xmlCharsOk(xml));
      const vifElements = ['interface', 'mac', 'target', 'model', 'mtu'];
      const names = elementNames(xml);
      assert.deepEqual(
        names.filter((n) => !vifElements.includes(n)),
        BASELINE_ELEMENTS.filter((n) => !vifElements.includes(n)),
        'no markup injected',
      );
      assert.equal(names.filter((n) => n === 'interface').length, 1);
    }),
    runs(800),
  );
  assert.ok(
    clean > 25 && (refusedAt['schema'] ?? 0) > 25,
    `both outcomes exercised: clean ${clean}, ${JSON.stringify(refusedAt)}`,
  );
  checkWithNft(samples);
});

test('Neutron answers: the refusal names the field, never echoes the hostile value', () => {
  const good = {
    id: ID.port,
    network_id: ID.net,
    mac_address: 'fa:16:3e:00:00:01',
    admin_state_up: true,
    status: 'DOWN',
    fixed_ips: [{ subnet_id: ID.sub4, ip_address: '10.0.0.5' }],
    'binding:vif_type': 'ovs',
    'binding:vif_details': { bridge_name: 'br-int' },
  };
  const fields: [string, string][] = [
    ['mac_address', 'ports[0].mac_address'],
    ['binding:vif_type', 'ports[0].binding:vif_type'],
    ['device_owner', 'ports[0].device_owner'],
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...fields),
      hostileString.filter((s) => s.length >= 6),
      ([key, field], value) => {
        const body = JSON.stringify({ ports: [{ ...good, [key]: value }] });
        try {
          parseAnswer('GET ports', ns.portsBody, body);
        } catch (err) {
          assert.ok(err instanceof NeutronResponseInvalid);
          assert.equal(err.field, field);
          assert.ok(!err.message.includes(value), `the message echoes ${JSON.stringify(value)}`);
        }
      },
    ),
    runs(1000),
  );
});
