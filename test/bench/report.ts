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
 * ratio to each peer, oriented so that above 1 means the gateway is better on that row.
 */
export function renderTable(samples: Samples, metrics: readonly Metric[], subject: string, peers: readonly string[], references: readonly string[], header: string): string {
  const systems = [subject, ...peers, ...references];
  const lines = [
    header,
    "",
    `| workload | ${systems.join(" | ")} | ${peers.map((p) => `${subject} vs ${p}`).join(" | ")} |`,
    `|---|${systems.map(() => "---:").join("|")}|${peers.map(() => "---:").join("|")}|`,
  ];
  for (const metric of metrics) {
    const cells = systems.map((s) => cell(samples.get(s)?.get(metric.key) ?? []));
    const ours = median(samples.get(subject)?.get(metric.key) ?? []);
    const ratios = peers.map((p) => {
      const theirs = median(samples.get(p)?.get(metric.key) ?? []);
      const ratio = metric.higherIsBetter ? ours / theirs : theirs / ours;
      return Number.isNaN(ratio) ? "n/a" : `${ratio.toFixed(2)}x`;
    });
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
