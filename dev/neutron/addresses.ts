import { isIP } from 'node:net';

// IPv4/IPv6 arithmetic for the dev server's IPAM: addresses as bigints, CIDRs
// normalised to their network address, RFC 5952 text for IPv6.

export type IpVersion = 4 | 6;

export interface Cidr {
  version: IpVersion;
  network: bigint;
  prefix: number;
}

const bits = (v: IpVersion) => (v === 4 ? 32 : 128);

export function parseIp(s: string): { version: IpVersion; value: bigint } | null {
  if (s.includes('%')) return null;
  const version = isIP(s);
  if (version === 4) {
    return { version, value: s.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n) };
  }
  if (version !== 6) return null;
  let text = s.toLowerCase();
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = parseIp(v4[1]!)!.value;
    text = text.slice(0, v4.index) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  return { version, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

export function formatIp(version: IpVersion, value: bigint): string {
  if (version === 4) return [24n, 16n, 8n, 0n].map((sh) => String((value >> sh) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run (first on a tie) of two or more zero groups.
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.len < 2) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

export function parseCidr(s: string): Cidr | null {
  const slash = s.indexOf('/');
  if (slash < 0 || !/^\d{1,3}$/.test(s.slice(slash + 1))) return null;
  const ip = parseIp(s.slice(0, slash));
  const prefix = Number(s.slice(slash + 1));
  if (!ip || prefix > bits(ip.version)) return null;
  const host = bits(ip.version) - prefix;
  return { version: ip.version, prefix, network: (ip.value >> BigInt(host)) << BigInt(host) };
}

export function formatCidr(c: Cidr): string {
  return `${formatIp(c.version, c.network)}/${c.prefix}`;
}

export function lastAddress(c: Cidr): bigint {
  return c.network + (1n << BigInt(bits(c.version) - c.prefix)) - 1n;
}

export function contains(c: Cidr, version: IpVersion, value: bigint): boolean {
  return version === c.version && value >= c.network && value <= lastAddress(c);
}

/** Usable host range: IPv4 without network and broadcast, IPv6 without the subnet-router anycast address. */
export function hostRange(c: Cidr): { first: bigint; last: bigint } | null {
  const first = c.network + 1n;
  const last = c.version === 4 ? lastAddress(c) - 1n : lastAddress(c);
  return first <= last ? { first, last } : null;
}
