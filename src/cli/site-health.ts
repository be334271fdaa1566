import { PROBE_INTERVAL_MS, type NotebookProbe } from "../tunnel/upstream-monitor.js";

/** Nagios-style: `gateway status` exits with the worst level of any site (0, 1, 2). */
export type HealthLevel = "ok" | "warning" | "critical";

/** One thing wrong with a site, and how bad it is. */
export interface HealthProblem {
  readonly level: Exclude<HealthLevel, "ok">;
  readonly message: string;
}

/** The tunnel as `serve` recorded it (storage/upstreams/<site>.json), dates as written there. */
export interface RecordedTunnel {
  readonly kind: "connecting" | "up" | "reconnecting" | "stopped";
  readonly attempt?: number;
  readonly since?: string;
  readonly nextAttemptAt?: string;
  readonly lastError?: string;
}

/** What `gateway status` knows about one site, for judging it. */
export interface SiteFacts {
  readonly certificate: { readonly notBefore: Date; readonly notAfter: Date } | null;
  /** The last renewal attempt's error, if it failed. */
  readonly lastError: string | null;
  /** Absent when the site has no `tunnel:`; null when no running `serve` recorded one. */
  readonly tunnel?: RecordedTunnel | null;
  /** When serve last wrote the tunnel's record: it rewrites it at every notebook probe. */
  readonly tunnelRecordedAt?: Date;
  readonly notebook: NotebookProbe;
  readonly allowUnprotectedUpstream: boolean;
}

const DAY_MS = 86_400_000;
/** A certificate closer than this to expiry is a warning (Let's Encrypt used to mail at 20 and 10 days). */
const EXPIRY_WARNING_MS = 7 * DAY_MS;
/**
 * Failed tunnel attempts in a row after which "reconnecting" counts as down: with the backoff
 * (0.5 s doubling, plus ssh's 10 s connect timeout), at least ~15 s of outage.
 */
const TUNNEL_DOWN_AFTER_ATTEMPTS = 5;
/** A record serve has not rewritten for this long was left by a serve that is gone (kill -9, a crash of the host). */
const RECORD_STALE_MS = 3 * PROBE_INTERVAL_MS;

/**
 * Warning: renewal failing, expiry near, tunnel reconnecting, notebook not answering as a
 * notebook. Critical: certificate expired or missing, tunnel down, notebook open without a password.
 * "Near" is 7 days, or a third of the lifetime for certificates that live under 3 weeks
 * (`tls: internal`'s 7-day ones renew at half-life, 3.5 days before expiry, which is no warning).
 */
export function assessSite(facts: SiteFacts, now: Date): HealthProblem[] {
  const problems: HealthProblem[] = [];
  const warn = (message: string): number => problems.push({ level: "warning", message });
  const critical = (message: string): number => problems.push({ level: "critical", message });
  const cert = facts.certificate;
  if (!cert) critical("no certificate yet; gateway serve or gateway renew obtains one");
  else {
    const remainingMs = cert.notAfter.getTime() - now.getTime();
    const lifetimeMs = cert.notAfter.getTime() - cert.notBefore.getTime();
    if (remainingMs <= 0) critical(`certificate expired ${describeDuration(-remainingMs)} ago`);
    else if (remainingMs < Math.min(EXPIRY_WARNING_MS, lifetimeMs / 3)) warn(`certificate expires in ${describeDuration(remainingMs)}`);
  }
  if (facts.lastError) warn(`renewal failing: ${facts.lastError}`);
  const t = facts.tunnel;
  const recordAgeMs = facts.tunnelRecordedAt ? now.getTime() - facts.tunnelRecordedAt.getTime() : 0;
  if (t === null) critical("tunnel down: no record of it; is gateway serve running?");
  else if (t && recordAgeMs > RECORD_STALE_MS) critical(`tunnel state unknown: serve last recorded it ${describeDuration(recordAgeMs)} ago; is gateway serve running?`);
  else if (t?.kind === "stopped") critical("tunnel down: stopped; is gateway serve running?");
  else if (t?.kind === "reconnecting" && (t.attempt ?? 0) >= TUNNEL_DOWN_AFTER_ATTEMPTS) critical(`tunnel down (attempt ${t.attempt}): ${t.lastError}`);
  else if (t?.kind === "reconnecting") warn(`tunnel reconnecting (attempt ${t.attempt}): ${t.lastError}`);
  else if (t?.kind === "connecting") warn("tunnel connecting");
  if (facts.notebook === "unprotected" && !facts.allowUnprotectedUpstream) critical("notebook answers without a password; run jupyter notebook password");
  else if (facts.notebook === "unreachable") warn("notebook not reachable");
  else if (facts.notebook === "not-a-notebook") warn("upstream does not answer like a Jupyter notebook");
  else if (facts.notebook === "unknown") warn("notebook state unknown");
  return problems;
}

/** The worst level among `problems`. */
export function worstLevel(problems: readonly HealthProblem[]): HealthLevel {
  return problems.some((p) => p.level === "critical") ? "critical" : problems.length > 0 ? "warning" : "ok";
}

/** "29 days", "40 hours", "12 minutes", "less than a minute": days only from 2 days up. */
export function describeDuration(ms: number): string {
  const plural = (n: number, unit: string): string => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (ms >= 2 * DAY_MS) return plural(Math.floor(ms / DAY_MS), "day");
  if (ms >= 3_600_000) return plural(Math.floor(ms / 3_600_000), "hour");
  if (ms >= 60_000) return plural(Math.floor(ms / 60_000), "minute");
  return "less than a minute";
}
