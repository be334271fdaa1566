import type { LogFields, Logger } from "./logger.js";

type Labels = Readonly<Record<string, string>>;

interface Counter {
  readonly help: string;
  readonly values: Map<string, number>;
}

interface Gauge {
  readonly help: string;
  readonly collect: () => Array<[Labels, number]>;
}

/** Counters and gauges rendered in the Prometheus text format (version 0.0.4). */
export class Metrics {
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();

  count(name: string, help: string, labels: Labels = {}, by = 1): void {
    let counter = this.counters.get(name);
    if (!counter) {
      counter = { help, values: new Map() };
      this.counters.set(name, counter);
    }
    const key = renderLabels(labels);
    counter.values.set(key, (counter.values.get(key) ?? 0) + by);
  }

  /** A gauge read when scraped. */
  gauge(name: string, help: string, collect: () => Array<[Labels, number]>): void {
    this.gauges.set(name, { help, collect });
  }

  /** Every value now, gauges read: what a worker sends the primary, which sums them. */
  snapshot(): MetricsSnapshot {
    const snapshot: Record<string, MetricFamily> = {};
    for (const [name, { help, values }] of this.counters) snapshot[name] = { help, type: "counter", values: [...values] };
    for (const [name, { help, collect }] of this.gauges) snapshot[name] = { help, type: "gauge", values: collect().map(([labels, value]) => [renderLabels(labels), value]) };
    return snapshot;
  }

  /** The Prometheus text of this process's metrics plus `others` (workers'), summed per name and labels. */
  render(others: readonly MetricsSnapshot[] = []): string {
    const merged = new Map<string, { help: string; type: string; values: Map<string, number> }>();
    for (const snapshot of [this.snapshot(), ...others]) {
      for (const [name, { help, type, values }] of Object.entries(snapshot)) {
        const family = merged.get(name) ?? { help, type, values: new Map<string, number>() };
        merged.set(name, family);
        for (const [labels, value] of values) family.values.set(labels, (family.values.get(labels) ?? 0) + value);
      }
    }
    const lines: string[] = [];
    for (const [name, { help, type, values }] of merged) {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of values) lines.push(`${name}${labels} ${value}`);
    }
    return `${lines.join("\n")}\n`;
  }
}

/** One metric's values, labels already rendered ({site="a"}). */
interface MetricFamily {
  readonly help: string;
  readonly type: "counter" | "gauge";
  readonly values: ReadonlyArray<readonly [string, number]>;
}

/** A process's metrics by name, as plain data (it crosses IPC as JSON). */
export type MetricsSnapshot = Readonly<Record<string, MetricFamily>>;

function renderLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([k, v]) => `${k}="${/[\\"\n]/.test(v) ? v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : v}"`).join(",")}}`;
}

/**
 * Counts the gateway's stable log events as metrics, so every place that logs an event is
 * measured too: upstream errors by kind, login lock-outs, renewal failures, tunnel restarts.
 */
export class CountingLogger implements Logger {
  constructor(
    private readonly inner: Logger,
    private readonly metrics: Metrics,
  ) {}

  info(event: string, fields: LogFields = {}): void {
    this.observe(event, fields);
    this.inner.info(event, fields);
  }

  warn(event: string, fields: LogFields = {}): void {
    this.observe(event, fields);
    this.inner.warn(event, fields);
  }

  error(event: string, fields: LogFields = {}): void {
    this.observe(event, fields);
    this.inner.error(event, fields);
  }

  private observe(event: string, fields: LogFields): void {
    const site = typeof fields.site === "string" ? fields.site : "";
    if (event.startsWith("proxy.upstream_")) this.metrics.count("gateway_upstream_errors_total", "Requests the notebook could not answer, by kind.", { site, kind: event.slice("proxy.upstream_".length) });
    else if (event === "guard.login_locked") this.metrics.count("gateway_login_lockouts_total", "Client addresses locked out after too many failed logins.", { site });
    else if (event === "cert.renew_failed") this.metrics.count("gateway_certificate_renewal_failures_total", "Failed certificate orders or renewals.", { site });
    else if (event === "cert.renewed") this.metrics.count("gateway_certificate_renewals_total", "Certificates obtained or renewed by this process.", { site });
    else if (event === "tunnel.down") this.metrics.count("gateway_tunnel_restarts_total", "Times the SSH tunnel went down and was restarted.", { site });
  }
}
