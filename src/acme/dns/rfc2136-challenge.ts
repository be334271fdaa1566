import { randomInt } from "node:crypto";
import type { DnsServer, DnsUpdateConfig } from "../../config/gateway-config.js";
import type { Clock } from "../../platform/clock.js";
import { GatewayError } from "../../platform/gateway-error.js";
import { describeError, type Logger } from "../../platform/logger.js";
import { challengeRecordName, type DnsChallenge, type DnsChallengeRequest } from "./dns-challenge.js";
import { decodeResponse, encodeNoopUpdate, encodeQuery, encodeTxtUpdate, RCODE_NAMES, txtValue, TYPE, type DnsResponse } from "./dns-message.js";
import { describeServer, exchange } from "./dns-transport.js";
import { checkAnswerSignature, readTsigKey, signMessage, type TsigKey } from "./tsig.js";

/** TTL of the challenge record: short, so a resolver that saw it does not keep it once removed. */
const RECORD_TTL_S = 60;
/** How often the server is asked whether the record is there yet. */
const POLL_INTERVAL_MS = 500;

const NOTAUTH = 9;
const REFUSED = 5;

/** What a rejected update's RCODE or TSIG error means, and what to do. */
const UPDATE_REMEDIES: Readonly<Record<string, string>> = {
  BADKEY: "the server knows no key by that name and algorithm; use the key the server's config holds (key_name and its algorithm), or add this key to it",
  BADSIG: "the server has a key by that name with another secret; copy the server's key statement (as tsig-keygen printed it) into acme.dns.key_file",
  BADTIME: "this machine's clock and the server's differ by more than 5 minutes; run NTP (timedatectl set-ntp true) on both",
  REFUSED: "the key may not update this zone; allow it in the zone's config (BIND: allow-update { key \"NAME\"; }; or update-policy { grant NAME name _acme-challenge.HOST. TXT; };)",
  NOTAUTH: "the server is not the primary of this zone; point acme.dns.server at the zone's primary, or set acme.dns.zone",
  NOTZONE: "the record is not in that zone; set acme.dns.zone to the zone that holds the name (or leave it out to look it up)",
};

/**
 * dns-01 over RFC 2136 dynamic updates signed with TSIG (RFC 8945): BIND, Knot, PowerDNS and
 * most authoritative servers take them. The zone comes from an SOA query unless configured; the
 * record is added, then the server is asked until it serves it, and deleted after validation.
 */
export class Rfc2136Challenge implements DnsChallenge {
  constructor(
    private readonly config: DnsUpdateConfig,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  async present({ name, value }: DnsChallengeRequest): Promise<() => Promise<void>> {
    const key = await readTsigKey(this.config.keyFile, this.config.keyName, this.config.algorithm);
    const recordName = challengeRecordName(name);
    const zone = this.config.zone ?? (await findZone(this.config.server, recordName));
    await this.update(key, zone, "add", recordName, value);
    this.logger.info("acme.dns_record_added", { record: recordName, zone, server: describeServer(this.config.server) });
    const remove = async (): Promise<void> => {
      try {
        await this.update(key, zone, "delete", recordName, value);
        this.logger.info("acme.dns_record_removed", { record: recordName, zone });
      } catch (err) {
        // The CA has decided by now (or will not be asked); a stale TXT record does no harm beyond clutter.
        this.logger.warn("acme.dns_cleanup_failed", { record: recordName, zone, error: describeError(err) });
      }
    };
    try {
      await this.waitForRecord(recordName, value);
    } catch (err) {
      await remove();
      throw err;
    }
    return remove;
  }

  private async update(key: TsigKey, zone: string, action: "add" | "delete", recordName: string, value: string): Promise<void> {
    const subject = `${action === "add" ? "adding" : "deleting"} TXT ${recordName} in zone ${zone} at ${describeServer(this.config.server)} with TSIG key ${key.name}`;
    await sendUpdate(this.config.server, key, encodeTxtUpdate(randomInt(0x10000), zone, action, recordName, value, RECORD_TTL_S), this.clock.now(), subject, recordName);
  }

  /** Asks the server for the record until it serves the value: then the CA, asking it, will too. */
  private async waitForRecord(recordName: string, value: string): Promise<void> {
    const deadline = this.clock.now().getTime() + this.config.propagationTimeoutMs;
    for (;;) {
      const answer = parse(await exchange(this.config.server, encodeQuery(randomInt(0x10000), recordName, TYPE.TXT)), this.config.server);
      if (answer.answers.some((r) => r.type === TYPE.TXT && r.name === recordName && txtValue(r) === value)) return;
      if (this.clock.now().getTime() >= deadline) {
        throw new GatewayError("dns.propagation_timeout", `timed out after ${this.config.propagationTimeoutMs / 1000} s waiting for ${describeServer(this.config.server)} to serve the TXT record ${recordName} it accepted; check the server's log, or raise acme.dns.propagation_timeout`);
      }
      await this.clock.sleep(POLL_INTERVAL_MS);
    }
  }
}

/** Signs and sends an UPDATE; throws with what the server's refusal means and what to do. */
async function sendUpdate(server: DnsServer, key: TsigKey, message: Buffer, now: Date, subject: string, recordName: string): Promise<void> {
  const { signed, mac } = signMessage(message, key, now);
  const raw = await exchange(server, signed);
  const answer = parse(raw, server);
  const { tsigError, verified } = malformed(server, () => checkAnswerSignature(raw, answer, key, mac));
  const problem = RCODE_NAMES[tsigError !== 0 ? tsigError : answer.rcode] ?? `RCODE ${answer.rcode}`;
  if (answer.rcode !== 0 || tsigError !== 0) {
    const remedy = UPDATE_REMEDIES[problem] ?? "see the DNS server's log";
    throw new GatewayError("dns.update_refused", `${subject}: the server answered ${problem}; ${remedy.replaceAll("NAME", key.name).replace("HOST", recordName.replace(/^_acme-challenge\./, ""))}`);
  }
  if (!verified) throw new GatewayError("dns.update_unsigned", `${subject}: the answer is not signed with the key (RFC 8945 §5.3.1), so it may not come from the server; check that nothing between here and the server answers DNS in its place`);
}

/**
 * For `gateway check`: reads the key, finds the zone of `name`'s challenge record and sends an
 * UPDATE that changes nothing, so a wrong key, a key the zone does not allow, or a server that is
 * not the primary shows before any order. Resolves with the zone and the key's name.
 */
export async function checkUpdateAccess(config: DnsUpdateConfig, name: string, now: Date): Promise<{ zone: string; keyName: string }> {
  const key = await readTsigKey(config.keyFile, config.keyName, config.algorithm);
  const recordName = challengeRecordName(name);
  const zone = config.zone ?? (await findZone(config.server, recordName));
  await sendUpdate(config.server, key, encodeNoopUpdate(randomInt(0x10000), zone), now, `a test update (changing nothing) of zone ${zone} at ${describeServer(config.server)} with TSIG key ${key.name}`, recordName);
  return { zone, keyName: key.name };
}

function parse(raw: Buffer, server: DnsServer): DnsResponse {
  return malformed(server, () => decodeResponse(raw));
}

/** Runs `read` over `server`'s answer; its plain Error (a malformed answer) becomes dns.bad_answer naming the server. */
function malformed<T>(server: DnsServer, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw new GatewayError("dns.bad_answer", `DNS server ${describeServer(server)} sent a malformed answer (${(err as Error).message}); check acme.dns.server names a DNS server`);
  }
}

/**
 * The zone holding `name`, from the SOA the server names: in the answer when `name` is the zone's
 * apex, otherwise in the authority section of its NXDOMAIN or NODATA answer (RFC 2308 §3).
 */
export async function findZone(server: DnsServer, name: string): Promise<string> {
  const answer = parse(await exchange(server, encodeQuery(randomInt(0x10000), name, TYPE.SOA)), server);
  const soa = [...answer.answers, ...answer.authority].find((r) => r.type === TYPE.SOA);
  if (soa && (answer.rcode === 0 || answer.rcode === 3)) return soa.name;
  const why = answer.rcode === REFUSED || answer.rcode === NOTAUTH ? "it is not authoritative for it" : `it answered ${RCODE_NAMES[answer.rcode] ?? answer.rcode} without an SOA record`;
  throw new GatewayError("dns.zone_not_found", `finding the zone of ${name} at ${describeServer(server)}: ${why}; point acme.dns.server at the zone's primary server, or set acme.dns.zone`);
}
