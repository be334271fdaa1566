import { GatewayError } from "../platform/gateway-error.js";
import type { AcmeIdentifier } from "./ip-identifier.js";

/**
 * The profile an IP-address site asks for when nothing is configured and the CA offers it: Let's
 * Encrypt issues for IP addresses only under `shortlived` (about 6 days).
 */
export const IP_PROFILE = "shortlived";

/** The profile names a directory lists in meta.profiles (draft-ietf-acme-profiles §3), in its order; none when it lists none. */
export function offeredProfiles(directory: unknown): string[] {
  const profiles = (directory as { meta?: { profiles?: unknown } } | null)?.meta?.profiles;
  return profiles && typeof profiles === "object" ? Object.keys(profiles) : [];
}

/** Why `profile` cannot be asked for at `directoryUrl`, naming what the CA offers, and what to do. */
export function describeProfileNotOffered(profile: string, offered: readonly string[], directoryUrl: string): string {
  const offers = offered.length > 0 ? `it offers ${offered.join(", ")}` : "it offers no profiles";
  const remedy = offered.length > 0 ? "set acme.profile (or the site's acme_profile) to one of those, or remove it for the CA's default" : "remove acme.profile (and any site's acme_profile) to order its default";
  return `the CA at ${directoryUrl} does not offer the ACME profile "${profile}" (${offers}); ${remedy}`;
}

/**
 * The profile to put in a new order, or undefined for none: the configured one (which the CA
 * must offer, or the order would fail at the CA, or worse be silently issued under its default);
 * with none configured, `shortlived` for IP addresses when offered.
 */
export function chooseProfile(configured: string | null, identifiers: readonly AcmeIdentifier[], offered: readonly string[], directoryUrl: string): string | undefined {
  if (configured !== null) {
    if (offered.includes(configured)) return configured;
    throw new GatewayError("acme.profile_not_offered", describeProfileNotOffered(configured, offered, directoryUrl));
  }
  return identifiers.some((i) => i.type === "ip") && offered.includes(IP_PROFILE) ? IP_PROFILE : undefined;
}
