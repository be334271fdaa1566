import type acme from "acme-client";
import { request } from "undici";
import type { AcmeCa, AcmeConfig } from "../config/gateway-config.js";
import type { Clock } from "../platform/clock.js";
import { GatewayError } from "../platform/gateway-error.js";
import { describeError, type Logger } from "../platform/logger.js";
import { UNTRUSTED_CERTIFICATE_CODES } from "../platform/untrusted-certificate.js";
import { parseBundle, type CertificateBundle } from "../tls/certificate-bundle.js";
import type { FileCertStore } from "../tls/cert-store.js";
import type { IssuedBundle, IssueRequest, Issuer, RenewalWindow } from "../tls/issuer.js";
import { chooseProfile, offeredProfiles } from "./acme-profile.js";
import { ariCertId, fetchRenewalWindow } from "./ari.js";
import { describeChallengeProblem, type AcmeProblem } from "./challenge-problem.js";
import type { DnsChallenge } from "./dns/dns-challenge.js";
import { HookChallenge } from "./dns/hook-challenge.js";
import { Rfc2136Challenge } from "./dns/rfc2136-challenge.js";
import { selfCheckHttp01 } from "./http01-self-check.js";
import { acmeIdentifier, tlsAlpnServerName } from "./ip-identifier.js";

/**
 * acme-client (with axios, ~26 MB resident), loaded at the first order rather than at start: a
 * gateway spends almost all its time between renewals. Node caches the module after the first call.
 */
async function loadAcme(): Promise<typeof acme> {
  const module = (await import("acme-client")).default;
  // acme-client retries failed requests inside axios, sleeping a 429's whole Retry-After (hours) and
  // then losing the cause. Turn that off (a module-wide setting of acme-client) and report ourselves.
  (module.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
  return module;
}

/** ACME directory resources the gateway uses beyond acme-client's (RFC 9773 adds renewalInfo; meta.profiles, draft-ietf-acme-profiles). */
interface Directory {
  readonly newOrder: string;
  readonly renewalInfo?: string;
  readonly meta?: { readonly profiles?: Readonly<Record<string, string>> };
}

/** Thrown when the CA rate-limits: `retryAfter` is when the CA said to come back (RFC 8555 §6.6). */
export class RateLimitedError extends GatewayError {
  constructor(
    message: string,
    readonly retryAfter: Date,
  ) {
    super("acme.rate_limited", message);
  }
}

/**
 * `tls: acme`: orders certificates from an ACME CA (Let's Encrypt by default) with acme-client.
 * Challenge answers go to the store, so whichever gateway process holds :80/:443 answers them.
 * Certificates get a fresh ECDSA P-256 key each time.
 */
export class AcmeIssuer implements Issuer {
  readonly description: string;
  private directory: Directory | undefined;
  /** For dns-01: what publishes the TXT records. */
  private readonly dns: DnsChallenge | null;

  constructor(
    private readonly config: AcmeConfig,
    /** listen.http, where the gateway checks its own HTTP-01 answers before the CA does; null or 0: no check. */
    private readonly httpPort: number | null,
    private readonly store: FileCertStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** The CA this issuer orders from: acme's primary (the default), or one of acme.fallback. */
    private readonly ca: AcmeCa = config,
  ) {
    this.description = `ACME ${ca.directoryUrl.href}`;
    this.dns = config.dns && (config.dns.kind === "rfc2136" ? new Rfc2136Challenge(config.dns, clock, logger) : new HookChallenge(config.dns, logger));
  }

  get directoryUrl(): URL {
    return this.ca.directoryUrl;
  }

  /** Where gateway.yaml names this CA, for remedies. */
  private get setting(): string {
    return (this.config.fallbacks as readonly AcmeCa[]).includes(this.ca) ? `the directory of acme.fallback (${this.directoryUrl.href})` : "acme.directory";
  }

  async obtain(request: IssueRequest): Promise<IssuedBundle> {
    const library = await loadAcme();
    const directory = await this.loadDirectory();
    const accountKey = await this.store.accountKey(async () => (await library.crypto.createPrivateEcdsaKey("P-256")).toString());
    const accountUrl = await this.store.accountUrl(this.directoryUrl.href);
    if (!accountUrl) return this.order(library, await this.register(library, accountKey), directory, request);
    try {
      return await this.order(library, this.client(library, accountKey, accountUrl), directory, request);
    } catch (err) {
      if (!(err instanceof GatewayError && err.code === "acme.account_missing")) throw err;
      // The CA no longer knows the stored account (a CA reset, storage moved to another CA):
      // register the same key again and retry the order once.
      const client = await this.register(library, accountKey);
      this.logger.warn("acme.account_reregistered", { directory: this.directoryUrl.href, forgotten: accountUrl, account: client.getAccountUrl(), reason: err.message });
      return this.order(library, client, directory, request);
    }
  }

  private client(library: typeof acme, accountKey: string, accountUrl?: string): acme.Client {
    return new library.Client({
      directoryUrl: this.directoryUrl.href,
      accountKey,
      ...(accountUrl ? { accountUrl } : {}),
      // Signs the account registration only (RFC 8555 §7.3.4); acme-client takes the key as the CA gives it.
      ...(this.ca.eab ? { externalAccountBinding: { kid: this.ca.eab.kid, hmacKey: this.ca.eab.hmacKey } } : {}),
      backoffAttempts: 12,
      backoffMin: 200,
      backoffMax: 2000,
    });
  }

  /** Registers `accountKey` with the CA (agreeing to its terms) and stores the account URL. */
  private async register(library: typeof acme, accountKey: string): Promise<acme.Client> {
    const client = this.client(library, accountKey);
    try {
      await this.call("registering the ACME account", async () => {
        try {
          await client.createAccount({ termsOfServiceAgreed: true, ...(this.ca.email ? { contact: [`mailto:${this.ca.email}`] } : {}) });
        } catch (err) {
          // The CA answered with this key's existing account (a run cut off between registering and
          // storing the URL), and acme-client's follow-up update failed: pebble refuses an update that
          // changes nothing. The account is there and usable.
          if (!knowsAccountUrl(client)) throw err;
          this.logger.warn("acme.account_found", { directory: this.directoryUrl.href, account: client.getAccountUrl(), update_refused: err instanceof Error ? err.message : String(err) });
        }
      });
    } catch (err) {
      if (err instanceof GatewayError && isExternalAccountProblem(err.cause)) throw this.externalAccountFailure(err);
      throw err;
    }
    await this.store.saveAccountUrl(this.directoryUrl.href, client.getAccountUrl());
    return client;
  }

  private async order(library: typeof acme, client: acme.Client, directory: Directory, { hosts, replacing, profile: configured = null }: IssueRequest): Promise<IssuedBundle> {
    // acme-client sends createOrder's argument as the newOrder payload as it is: `profile` passes through.
    const identifiers = hosts.map(acmeIdentifier);
    const profile = chooseProfile(configured, identifiers, offeredProfiles(directory), this.directoryUrl.href);
    const payload = { identifiers, ...(profile ? { profile } : {}) };
    const replaces = replacing && directory.renewalInfo ? safeCertId(replacing.certPem) : undefined;
    let order;
    try {
      order = await this.call("creating the order", () => client.createOrder({ ...payload, ...(replaces ? { replaces } : {}) }));
    } catch (err) {
      if (!replaces || err instanceof RateLimitedError || (err instanceof GatewayError && err.code === "acme.account_missing")) throw err;
      // RFC 9773 §5: a CA may refuse `replaces` (e.g. already replaced); order without it.
      this.logger.warn("acme.replaces_refused", { site: hosts[0], error: describeError(err) });
      order = await this.call("creating the order", () => client.createOrder(payload));
    }
    this.logger.info("acme.ordered", { site: hosts[0], identifiers: identifiers.map((i) => `${i.type}:${i.value}`), profile: profile ?? null });

    const authorizations = await this.call("fetching authorizations", () => client.getAuthorizations(order));
    for (const [index, authz] of authorizations.entries()) {
      await this.authorize(library, client, order, authz, { allNames: hosts, remaining: authorizations.length - index - 1 });
    }
    const key = await library.crypto.createPrivateEcdsaKey("P-256");
    // acme-client writes an IP address as an IP subjectAltName. No common name for an IP address:
    // CAs issue IP certificates without one (Let's Encrypt's shortlived profile has none at all).
    const commonName = identifiers[0]?.type === "dns" ? { commonName: hosts[0] } : {};
    const [, csr] = await library.crypto.createCsr({ ...commonName, altNames: [...hosts] }, key);
    const finalized = await this.call("finalizing the order", () => client.finalizeOrder(order, csr));
    const certPem = await this.call("downloading the certificate", () => client.getCertificate(finalized));
    return { ...parseBundle(certPem, key.toString(), `certificate from ${this.directoryUrl.host}`), issuedBy: this.directoryUrl.href };
  }

  /** The CA refused the account's External Account Binding (RFC 8555 §7.3.4): missing, or a kid and key that are not its pair. */
  private externalAccountFailure(err: GatewayError): GatewayError {
    const remedy = this.ca.eab
      ? `check eab for ${this.directoryUrl.href} in gateway.yaml: kid and the key in ${this.ca.eab.hmacKeyFile} must be the pair the CA gave (make a new pair in the CA's dashboard if in doubt)`
      : `this CA requires External Account Binding: set eab: {kid, hmac_key_file} for ${this.directoryUrl.href} in gateway.yaml, with the credentials from the CA's dashboard`;
    return new GatewayError("acme.eab_refused", `${err.message}; ${remedy}`, { cause: err });
  }

  async renewalWindow(bundle: CertificateBundle): Promise<RenewalWindow | null> {
    const { renewalInfo } = await this.loadDirectory();
    if (!renewalInfo) return null;
    return fetchRenewalWindow(renewalInfo, bundle.certPem, this.clock.now());
  }

  /** Proves control of `authz`'s name; `position`: the order's names and how many authorizations come after this one (for hooks). */
  private async authorize(library: typeof acme, client: acme.Client, order: acme.Order, authz: acme.Authorization, position: { allNames: readonly string[]; remaining: number }): Promise<void> {
    if (authz.status === "valid") return;
    const name = authz.identifier.value;
    // acme-client's types predate TLS-ALPN-01 (RFC 8737); its runtime supports it.
    const challenge = authz.challenges.find((c) => (c.type as string) === this.config.challenge);
    const isAlpn = this.config.challenge === "tls-alpn-01";
    if (!challenge) {
      throw new GatewayError("acme.no_challenge", `${name}: the CA offers no ${this.config.challenge} challenge (offers ${authz.challenges.map((c) => c.type).join(", ")}); set acme.challenge to one of those`);
    }
    // For dns-01 this is already the TXT value, base64url(SHA-256(key authorization)) (RFC 8555 §8.4).
    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
    // Stored under the name the CA's handshake will carry, which the listener looks up.
    const alpnName = tlsAlpnServerName(name);
    let removeDnsRecord: (() => Promise<void>) | undefined;
    if (this.dns) {
      removeDnsRecord = await this.dns.present({ name, value: keyAuthorization, ...position });
    } else if (isAlpn) {
      // The challenge certificate names the identifier itself: an IP address as an IP subjectAltName (RFC 8738 §6).
      const [alpnKey, alpnCert] = await library.crypto.createAlpnCertificate(authz, keyAuthorization);
      await this.store.putAlpnCertificate(alpnName, alpnKey.toString() + alpnCert.toString());
    } else {
      await this.store.putChallenge(challenge.token, keyAuthorization);
      // A wrong answer found here costs seconds; found by the CA it costs a failed validation (rate-limited).
      if (this.httpPort) {
        for (const finding of await selfCheckHttp01(name, challenge.token, keyAuthorization, { port: this.httpPort, resolvers: this.config.resolvers })) {
          this.logger.warn("acme.self_check_failed", { site: name, finding, hint: "the gateway asks the CA anyway: it may see this server differently" });
        }
      }
    }
    try {
      await this.call(`asking the CA to validate ${name} (${challenge.type})`, () => client.completeChallenge(challenge));
      try {
        // waitForValidStatus needs the authorization's URL, which getAuthorizations() keeps on it.
        await client.waitForValidStatus(authz as acme.Authorization & { url: string });
      } catch (err) {
        throw await this.challengeFailure(client, order, name, err);
      }
    } finally {
      if (removeDnsRecord) await removeDnsRecord();
      else await (isAlpn ? this.store.removeAlpnCertificate(alpnName) : this.store.removeChallenge(challenge.token));
    }
  }

  /**
   * Why the CA refused `name`: acme-client throws the whole authorization as JSON, so fetch it
   * again and take the failed challenge's problem (RFC 8555 §7.1.4 `error`). The whole
   * authorization goes to the log as `details`, never into the one-line message.
   */
  private async challengeFailure(client: acme.Client, order: acme.Order, name: string, err: unknown): Promise<GatewayError> {
    const step = `validating ${name} over ${this.config.challenge}`;
    const authz = await client
      .getAuthorizations(order)
      .then((all) => all.find((a) => a.identifier.value === name))
      .catch(() => undefined);
    const failed = authz?.challenges.find((c) => (c.type as string) === this.config.challenge) as { error?: AcmeProblem } | undefined;
    if (!failed?.error) return new GatewayError("acme.failed", `${step}: ${describeCause(err)}`, { cause: err });
    return new GatewayError("acme.challenge_failed", `${step}: ${describeChallengeProblem(failed.error, this.config.challenge)}`, { details: { authorization: authz } });
  }

  /** The directory, fetched once with undici so an unreachable or untrusted CA reports its real cause. */
  private async loadDirectory(): Promise<Directory> {
    if (this.directory) return this.directory;
    const url = this.directoryUrl.href;
    let res;
    try {
      res = await request(url, { method: "GET", headersTimeout: 15_000, bodyTimeout: 15_000 });
    } catch (cause) {
      const code = describeCause(cause);
      if (UNTRUSTED_CERTIFICATE_CODES.has(code)) {
        const text = (cause as { cause?: Error }).cause?.message ?? (cause as Error).message;
        throw new GatewayError("acme.untrusted", `the ACME directory ${url} presents a certificate this server does not trust (${code}: ${text}); for a private CA, start the gateway with NODE_EXTRA_CA_CERTS=/path/to/ca.pem (its root certificate, PEM) in serve's and renew's environment`, { cause });
      }
      throw new GatewayError("acme.unreachable", `cannot reach the ACME directory ${url} (${code}); check ${this.setting}, DNS and outbound HTTPS from this server`, { cause });
    }
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new GatewayError("acme.bad_directory", `the ACME directory ${url} answered ${res.statusCode}; check ${this.setting}`);
    this.directory = JSON.parse(text) as Directory;
    return this.directory;
  }

  /** Runs one ACME step; turns acme-client's and axios's errors into one line with the real cause. */
  private async call<T>(step: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const response = (err as { response?: { status?: number; headers?: Record<string, string>; data?: { detail?: string; type?: string } } }).response;
      if (response?.status === 429) {
        const retryAfterS = Number(response.headers?.["retry-after"]);
        const retryAfter = new Date(this.clock.now().getTime() + (Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS : 3600) * 1000);
        throw new RateLimitedError(`${step}: rate limited by the CA (${response.data?.detail ?? "429"}); the gateway tries again after ${retryAfter.toISOString()}`, retryAfter);
      }
      const detail = response?.data?.detail ?? describeCause(err);
      // acme-client keeps only the problem's detail: Boulder and Pebble say "Account … not found".
      const code = /accountDoesNotExist|\baccount\b.*\b(?:not found|does not exist)/i.test(detail) ? "acme.account_missing" : "acme.failed";
      throw new GatewayError(code, `${step}: ${detail}`, { cause: err });
    }
  }
}

/** acme-client's error for a refused or missing External Account Binding (pebble, Boulder, ZeroSSL say "external account"). */
function isExternalAccountProblem(err: unknown): boolean {
  const data = (err as { response?: { data?: { type?: string; detail?: string } } }).response?.data;
  return /externalAccountRequired|external ?account/i.test(`${data?.type ?? ""} ${data?.detail ?? ""} ${err instanceof Error ? err.message : ""}`);
}

function knowsAccountUrl(client: acme.Client): boolean {
  try {
    client.getAccountUrl();
    return true;
  } catch {
    return false;
  }
}

function describeCause(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string; message?: string }; message?: string };
  return e.cause?.code ?? e.code ?? e.cause?.message ?? e.message ?? String(err);
}

function safeCertId(certPem: string): string | undefined {
  try {
    return ariCertId(certPem);
  } catch {
    return undefined;
  }
}
