import type { AcmeConfig } from "../config/gateway-config.js";
import { GatewayError } from "../platform/gateway-error.js";
import { describeError, type Logger } from "../platform/logger.js";
import type { CertificateBundle } from "../tls/certificate-bundle.js";
import type { IssuedBundle, IssueRequest, Issuer, RenewalWindow } from "../tls/issuer.js";
import { RateLimitedError, type AcmeIssuer } from "./acme-issuer.js";

/**
 * `acme.fallback`: orders from the primary CA and, when it fails after its own retries
 * (unreachable, 5xx, rate limited, refusing the account), from each fallback in turn. Every order
 * starts at the primary again. A failed challenge is not passed on: it says something about this
 * server (DNS, firewall, port 80) that every CA would find, and each try costs a failed
 * validation, except a CAA refusal, which names one CA. Nor is a local failure (isCaFailure).
 */
export class FallbackIssuer implements Issuer {
  readonly description: string;

  constructor(
    /** The primary first, then the fallbacks in the order of gateway.yaml. */
    private readonly issuers: readonly [AcmeIssuer, ...AcmeIssuer[]],
    private readonly logger: Logger,
  ) {
    this.description = issuers.map((i) => i.description).join(", then ");
  }

  async obtain(request: IssueRequest): Promise<IssuedBundle> {
    const failures: Array<{ readonly directory: string; readonly error: unknown }> = [];
    for (const [index, issuer] of this.issuers.entries()) {
      try {
        return await issuer.obtain(request);
      } catch (err) {
        failures.push({ directory: issuer.directoryUrl.href, error: err });
        const next = this.issuers[index + 1];
        if (!next || !isCaFailure(err)) break;
        this.logger.warn("acme.fallback", { site: request.hosts[0], failed: issuer.directoryUrl.href, reason: describeError(err), next: next.directoryUrl.href });
      }
    }
    throw combine(failures);
  }

  /**
   * ARI from the CA that issued `bundle` (`issuedBy`, from the renewal state): only it knows the
   * certificate. When that is unknown, the primary, or (when it is down or does not know the
   * certificate) a fallback.
   */
  async renewalWindow(bundle: CertificateBundle, issuedBy?: string | null): Promise<RenewalWindow | null> {
    const issuer = this.issuers.find((i) => i.directoryUrl.href === issuedBy);
    if (issuer) return issuer.renewalWindow(bundle);
    let first: unknown;
    for (const each of this.issuers) {
      try {
        return await each.renewalWindow(bundle);
      } catch (err) {
        first ??= err;
      }
    }
    throw first;
  }
}

/**
 * The failures that say something about the CA, not this server: it is unreachable, untrusted,
 * answers 5xx or refuses (acme.failed comes only from a CA's answer), rate-limits, refuses the
 * account or its EAB, lacks the challenge or profile, or its CAA record is refused.
 */
const CA_FAILURE_CODES: ReadonlySet<string> = new Set(["acme.unreachable", "acme.untrusted", "acme.bad_directory", "acme.failed", "acme.account_missing", "acme.eab_refused", "acme.no_challenge", "acme.profile_not_offered"]);

/**
 * Whether another CA might fill the order that failed with `err`. Everything else stops at the
 * first CA: a failed challenge, a local problem (a dns-01 hook or UPDATE failing, propagation
 * timing out, the store, a bug) would only be repeated, hooks and UPDATEs included, at each CA.
 */
function isCaFailure(err: unknown): boolean {
  if (err instanceof RateLimitedError) return true;
  if (!(err instanceof GatewayError)) return false;
  if (err.code === "acme.challenge_failed") return /\bCAA\b/.test(err.message);
  return CA_FAILURE_CODES.has(err.code);
}

/**
 * One error for the CAs tried: a single one as it is; several named in order with each cause. It
 * is rate-limited (the state then waits) only when every CA was, until the first allows again.
 */
function combine(failures: ReadonlyArray<{ readonly directory: string; readonly error: unknown }>): unknown {
  if (failures.length === 1) return failures[0]?.error;
  // A GatewayError's message already holds the cause and the fix; only other errors need their chain.
  const say = (err: unknown): string => (err instanceof GatewayError ? err.message : describeError(err));
  const message = `every ACME CA failed: ${failures.map((f, i) => `${i === 0 ? "the primary" : `fallback ${i}`} ${f.directory}: ${say(f.error)}`).join("; then ")}`;
  const limits = failures.map((f) => (f.error instanceof RateLimitedError ? f.error.retryAfter : null));
  if (limits.every((d): d is Date => d !== null)) return new RateLimitedError(message, new Date(Math.min(...limits.map((d) => d.getTime()))));
  const last = failures.at(-1)?.error;
  return new GatewayError(last instanceof GatewayError ? last.code : "acme.failed", message, { cause: last, ...(last instanceof GatewayError && last.details ? { details: last.details } : {}) });
}

/** What `issuedBy` (a state's `issued.by`) is in `acme`: its primary CA, a fallback, or neither (the local CA, or a CA no longer configured). */
export function caRole(acme: AcmeConfig, issuedBy: string): "primary" | "fallback" | null {
  if (issuedBy === acme.directoryUrl.href) return "primary";
  return acme.fallbacks.some((f) => f.directoryUrl.href === issuedBy) ? "fallback" : null;
}
