// Summary statistics. Percentiles are nearest-rank on the sorted sample
// (p95 of 20 values is the 19th smallest), so every reported value was measured.

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p95: number;
  max: number;
  mean: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

const r = (x: number) => Math.round(x * 10) / 10;

export function summarize(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { n: 0, min: NaN, p50: NaN, p95: NaN, max: NaN, mean: NaN };
  return {
    n,
    min: r(sorted[0] as number),
    p50: r(percentile(sorted, 0.5)),
    p95: r(percentile(sorted, 0.95)),
    max: r(sorted[n - 1] as number),
    mean: r(sorted.reduce((a, b) => a + b, 0) / n),
  };
}

/** Median of each named component over many runs (components missing in a run count as absent, not 0). */
export function medianByName(runs: Record<string, number>[]): Record<string, number> {
  const names = [...new Set(runs.flatMap((x) => Object.keys(x)))];
  return Object.fromEntries(
    names.map((name) => {
      const vs = runs.map((x) => x[name]).filter((v): v is number => v !== undefined);
      return [name, summarize(vs).p50];
    }),
  );
}

export const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
