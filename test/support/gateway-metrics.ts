import { request } from "undici";

/** One sample of a metric in Prometheus text (labels as the gateway writes them), or undefined. */
export function metricSample(metrics: string, name: string, labels = ""): number | undefined {
  const line = metrics.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

/** Reads one metric from the gateway's admin endpoint (admin: 127.0.0.1:0; the ready line has the port). */
export async function scrapeMetric(adminPort: number, name: string, labels = ""): Promise<number | undefined> {
  const res = await request(`http://127.0.0.1:${adminPort}/metrics`, { headers: { connection: "close" } });
  return metricSample(await res.body.text(), name, labels);
}
