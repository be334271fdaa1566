import type { Metric } from "./workloads.js";

/** Every value measured: system → metric key → one value per round. */
export type Samples = Map<string, Map<string, number[]>>;

export function record(samples: Samples, system: string, values: Record<string, number>): void {
  const bySystem = samples.get(system) ?? new Map<string, number[]>();
  samples.set(system, bySystem);
  for (const [key, value] of Object.entries(values)) bySystem.set(key, [...(bySystem.get(key) ?? []), value]);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/**
 * The markdown table: per row and system the median (min-max over rounds), then the gateway's
 * ratio to each peer, oriented so that above 1 means the gateway is better on that row; with
 * `bestPeer`, a last column holds the ratio to whichever peer did best on that row, named.
 */
export function renderTable(samples: Samples, metrics: readonly Metric[], subject: string, peers: readonly string[], references: readonly string[], header: string, options: { bestPeer?: boolean } = {}): string {
  const systems = [subject, ...peers, ...references];
  const ratioColumns = [...peers.map((p) => `${subject} vs ${p}`), ...(options.bestPeer ? [`${subject} vs best peer`] : [])];
  const lines = [
    header,
    "",
    `| workload | ${systems.join(" | ")} | ${ratioColumns.join(" | ")} |`,
    `|---|${systems.map(() => "---:").join("|")}|${ratioColumns.map(() => "---:").join("|")}|`,
  ];
  for (const metric of metrics) {
    const cells = systems.map((s) => cell(samples.get(s)?.get(metric.key) ?? []));
    const ours = median(samples.get(subject)?.get(metric.key) ?? []);
    const ratioTo = (p: string): number => {
      const theirs = median(samples.get(p)?.get(metric.key) ?? []);
      return metric.higherIsBetter ? ours / theirs : theirs / ours;
    };
    const format = (ratio: number): string => (Number.isNaN(ratio) ? "n/a" : `${ratio.toFixed(2)}x`);
    const ratios = peers.map((p) => format(ratioTo(p)));
    // The best peer is the one the gateway compares worst against (the lowest ratio).
    const best = peers.filter((p) => !Number.isNaN(ratioTo(p))).sort((a, b) => ratioTo(a) - ratioTo(b))[0];
    if (options.bestPeer) ratios.push(best === undefined ? "n/a" : `${format(ratioTo(best))} (${best})`);
    lines.push(`| ${metric.label} | ${cells.join(" | ")} | ${ratios.join(" | ")} |`);
  }
  lines.push("", `Ratios above 1 mean ${subject} is better on that row (faster, or less CPU, latency or memory).`);
  return `${lines.join("\n")}\n`;
}

function cell(values: readonly number[]): string {
  if (values.length === 0) return "n/a";
  const digits = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
  const m = digits(median(values));
  return values.length === 1 ? m : `${m} (${digits(Math.min(...values))}-${digits(Math.max(...values))})`;
}
