/** Validity window of a certificate. */
export interface Validity {
  readonly notBefore: Date;
  readonly notAfter: Date;
}

const TEN_DAYS_MS = 10 * 24 * 3600 * 1000;

/**
 * When a certificate should be renewed: when a third of its lifetime remains, or half for
 * lifetimes under 10 days (short-lived certificates). Never a fixed number of days, since CA
 * lifetimes keep shrinking (Let's Encrypt: 90 → 45 → 6 days).
 */
export function renewalTime(cert: Validity): Date {
  const lifetimeMs = cert.notAfter.getTime() - cert.notBefore.getTime();
  const remainingRatio = lifetimeMs < TEN_DAYS_MS ? 1 / 2 : 1 / 3;
  return new Date(cert.notAfter.getTime() - lifetimeMs * remainingRatio);
}

export function isRenewalDue(cert: Validity, now: Date): boolean {
  return now.getTime() >= renewalTime(cert).getTime();
}
