/** One dns-01 TXT record to publish (RFC 8555 §8.4). */
export interface DnsChallengeRequest {
  /** The name being validated, without a wildcard's "*." (the record goes at _acme-challenge.<name>). */
  readonly name: string;
  /** The TXT value: base64url(SHA-256(key authorization)). */
  readonly value: string;
  /** Every name of the order, for hooks (CERTBOT_ALL_DOMAINS). */
  readonly allNames: readonly string[];
  /** How many challenges of the order come after this one (CERTBOT_REMAINING_CHALLENGES). */
  readonly remaining: number;
}

/**
 * Publishes dns-01 TXT records: `present` returns once the record is in place (as far as the
 * gateway can tell), with the function that removes it again, which the issuer calls after the
 * CA's validation whatever its outcome. That function logs its own failure and never throws: a
 * leftover record must not turn an issued certificate into a failed order.
 */
export interface DnsChallenge {
  present(request: DnsChallengeRequest): Promise<() => Promise<void>>;
}

/** Where a dns-01 record goes: the label RFC 8555 §8.4 prescribes, under the validated name. */
export function challengeRecordName(name: string): string {
  return `_acme-challenge.${name}`;
}
