import { z } from 'zod';
import { run } from './exec.js';

// nftables through `nft -f -`: a whole file is one kernel transaction, so a
// ruleset is applied completely or not at all. The text comes from
// domain/nft-ruleset.ts, which validated every value in it.

export async function applyRuleset(text: string): Promise<void> {
  await run('nft', ['-f', '-'], { input: text });
}

const jsonOutput = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });
const tableEntry = z.object({ family: z.string(), name: z.string() });

export interface NftTable {
  family: string;
  name: string;
}

/** Tables whose name starts with `prefix` (ours: `nt-`). */
export async function listTables(prefix: string): Promise<NftTable[]> {
  const { stdout } = await run('nft', ['-j', 'list', 'tables']);
  return jsonOutput
    .parse(JSON.parse(stdout))
    .nftables.flatMap((item) => (item.table === undefined ? [] : [tableEntry.parse(item.table)]))
    .filter((t) => t.name.startsWith(prefix))
    .map(({ family, name }) => ({ family, name }));
}

/** Deletes tables, present or not, in one transaction (nft 1.0.6 has no `destroy`). */
export async function deleteTables(tables: NftTable[]): Promise<void> {
  if (tables.length === 0) return;
  const lines = tables.flatMap((t) => {
    if (!/^[a-z0-9]+$/.test(t.family) || !/^[A-Za-z][A-Za-z0-9_.-]{0,255}$/.test(t.name)) {
      throw new Error(`not an nft table: ${JSON.stringify(t)}`);
    }
    return [`table ${t.family} ${t.name}`, `delete table ${t.family} ${t.name}`];
  });
  await applyRuleset(lines.join('\n') + '\n');
}

const counterRule = z.object({
  family: z.string(),
  table: z.string(),
  chain: z.string(),
  comment: z.string().optional(),
  expr: z.array(z.record(z.string(), z.unknown())),
});

const counterValue = z.object({ packets: z.number(), bytes: z.number() });

export interface RuleCounter {
  chain: string;
  comment: string;
  packets: number;
  bytes: number;
}

/** The counters of a table's commented rules: what an operator reads to see drops. */
export async function ruleCounters(family: string, table: string): Promise<RuleCounter[]> {
  const { stdout } = await run('nft', ['-j', 'list', 'table', family, table]);
  const out: RuleCounter[] = [];
  for (const item of jsonOutput.parse(JSON.parse(stdout)).nftables) {
    if (item.rule === undefined) continue;
    const rule = counterRule.parse(item.rule);
    const found = rule.expr.find((e) => e.counter !== undefined);
    if (rule.comment !== undefined && found) {
      const counter = counterValue.parse(found.counter);
      out.push({ chain: rule.chain, comment: rule.comment, packets: counter.packets, bytes: counter.bytes });
    }
  }
  return out;
}
