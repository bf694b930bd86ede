// The Temporal dev server's own Prometheus metrics: how many persistence
// operations (its SQLite) a phase caused and how long they took, by operation.

export type Scrape = Map<string, number>;

const WANTED =
  /^(persistence_requests|persistence_latency_sum|persistence_latency_count|visibility_persistence_latency_sum|visibility_persistence_latency_count)\{/;

export async function scrape(url: string): Promise<Scrape> {
  const out: Scrape = new Map();
  const res = await fetch(url);
  for (const line of (await res.text()).split('\n')) {
    if (!WANTED.test(line)) continue;
    const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const op = /operation="([^"]*)"/.exec(m[2]!)?.[1] ?? '?';
    const key = `${m[1]}|${op}`;
    out.set(key, (out.get(key) ?? 0) + Number(m[3]));
  }
  return out;
}

export interface PersistenceUse {
  /** persistence operations per unit (e.g. per power-on), by operation; the server's periodic reads left out */
  opsByOperation: Record<string, number>;
  ops: number;
  /** of which writes (Create/Update/Append/Upsert/Delete/Complete/Range...) */
  writeOps: number;
  /** ms spent in persistence calls (sum of their latencies; they may overlap) */
  latencyMs: number;
  visibilityOps: number;
  visibilityLatencyMs: number;
}

/** The server's periodic reads (cluster metadata, namespace registry): per unit of time, not per power-on. */
const BACKGROUND =
  /^(GetCurrentClusterMetadata|GetClusterMetadata|ListClusterMetadata|GetNamespace|ListNamespaces|GetMetadata|ListNexusEndpoints|GetClusterMembers|UpsertClusterMembership|PruneClusterMembership)$/;

const isWrite = (op: string) => !/^(Get|Read|List|Count|Scan|Describe)/.test(op);

/** The use between two scrapes, divided by `per` (e.g. the number of power-ons in the phase). */
export function persistenceUse(before: Scrape, after: Scrape, per: number): PersistenceUse {
  const d = (key: string) => (after.get(key) ?? 0) - (before.get(key) ?? 0);
  const ops: Record<string, number> = {};
  let latency = 0;
  let visOps = 0;
  let visLatency = 0;
  for (const key of after.keys()) {
    const [name, op] = key.split('|') as [string, string];
    if (BACKGROUND.test(op)) continue;
    if (name === 'persistence_latency_count') {
      const n = d(key);
      if (n > 0) ops[op] = Math.round((n / per) * 10) / 10;
    } else if (name === 'persistence_latency_sum') latency += d(key);
    else if (name === 'visibility_persistence_latency_count') visOps += d(key);
    else if (name === 'visibility_persistence_latency_sum') visLatency += d(key);
  }
  const total = Object.values(ops).reduce((a, b) => a + b, 0);
  const writes = Object.entries(ops)
    .filter(([op]) => isWrite(op))
    .reduce((a, [, n]) => a + n, 0);
  return {
    opsByOperation: Object.fromEntries(Object.entries(ops).sort((a, b) => b[1] - a[1])),
    ops: Math.round(total * 10) / 10,
    writeOps: Math.round(writes * 10) / 10,
    latencyMs: Math.round(((latency * 1000) / per) * 10) / 10,
    visibilityOps: Math.round((visOps / per) * 10) / 10,
    visibilityLatencyMs: Math.round(((visLatency * 1000) / per) * 10) / 10,
  };
}
