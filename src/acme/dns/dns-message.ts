/**
 * The few DNS messages dns-01 needs, in wire format (RFC 1035 §4): a query, and an UPDATE
 * (RFC 2136) that adds or deletes one TXT record; and the parts of an answer the gateway reads.
 * Names are written uncompressed; answers may use compression (RFC 1035 §4.1.4).
 */

export const TYPE = { SOA: 6, TXT: 16, TSIG: 250, ANY: 255 } as const;
export const CLASS = { IN: 1, NONE: 254, ANY: 255 } as const;
const OPCODE_UPDATE = 5;

/** One resource record of an answer: `rdataOffset` points into the whole message, for compressed names in RDATA. */
export interface ResourceRecord {
  readonly name: string;
  readonly type: number;
  readonly class: number;
  readonly ttl: number;
  readonly rdata: Buffer;
  /** Where the record starts in the message (TSIG verification cuts the message there). */
  readonly offset: number;
}

/** A DNS answer as far as the gateway reads it. */
export interface DnsResponse {
  readonly id: number;
  /** RCODE (RFC 1035 §4.1.1; RFC 2136 §2.2 adds YXDOMAIN … NOTZONE). */
  readonly rcode: number;
  readonly truncated: boolean;
  readonly answers: readonly ResourceRecord[];
  readonly authority: readonly ResourceRecord[];
  readonly additional: readonly ResourceRecord[];
}

/** Names of RCODEs (RFC 1035, RFC 2136 §2.2) and TSIG errors (RFC 8945 §5.3), for messages. */
export const RCODE_NAMES: Readonly<Record<number, string>> = {
  0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED", 6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE",
  16: "BADSIG", 17: "BADKEY", 18: "BADTIME", 22: "BADTRUNC",
};

/** `name` in wire format, lower-cased (RFC 8945 §4.3.3 signs names in canonical form). */
export function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, "").split(".").filter((l) => l !== "");
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label.toLowerCase(), "ascii");
    if (bytes.length > 63) throw new Error(`DNS label too long: ${label}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function header(id: number, flags: number, counts: readonly [number, number, number, number]): Buffer {
  const buffer = Buffer.alloc(12);
  buffer.writeUInt16BE(id, 0);
  buffer.writeUInt16BE(flags, 2);
  counts.forEach((count, i) => buffer.writeUInt16BE(count, 4 + 2 * i));
  return buffer;
}

function question(name: string, type: number, klass: number): Buffer {
  const fixed = Buffer.alloc(4);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(klass, 2);
  return Buffer.concat([encodeName(name), fixed]);
}

/** A resource record in wire format. */
export function encodeRecord(name: string, type: number, klass: number, ttl: number, rdata: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(klass, 2);
  fixed.writeUInt32BE(ttl, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([encodeName(name), fixed, rdata]);
}

/** TXT RDATA holding one string (an ACME dns-01 value is 43 characters, well under 255). */
function txtRdata(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
}

/** A non-recursive query: the gateway asks the zone's own server, which answers from its data. */
export function encodeQuery(id: number, name: string, type: number): Buffer {
  return Buffer.concat([header(id, 0, [1, 0, 0, 0]), question(name, type, CLASS.IN)]);
}

/**
 * An UPDATE for `zone` that adds (`ttl` seconds) or deletes one TXT record, and only that record:
 * RFC 2136 §2.5.1 adds to an RRset, §2.5.4 deletes an RR from an RRset (class NONE, TTL 0). So a
 * wildcard's and its base name's values, or another client's, are left alone.
 */
export function encodeTxtUpdate(id: number, zone: string, action: "add" | "delete", name: string, value: string, ttl: number): Buffer {
  const record = action === "add" ? encodeRecord(name, TYPE.TXT, CLASS.IN, ttl, txtRdata(value)) : encodeRecord(name, TYPE.TXT, CLASS.NONE, 0, txtRdata(value));
  return Buffer.concat([header(id, OPCODE_UPDATE << 11, [1, 0, 1, 0]), question(zone, TYPE.SOA, CLASS.IN), record]);
}

/**
 * An UPDATE for `zone` that changes nothing: its one prerequisite, "the zone's apex is in use"
 * (RFC 2136 §2.4.4), always holds. The server still checks its signature, and (BIND's
 * allow-update) whether the key may update the zone, so `gateway check` learns that without
 * touching the zone. An update-policy is judged per record, which this update has none of.
 */
export function encodeNoopUpdate(id: number, zone: string): Buffer {
  return Buffer.concat([header(id, OPCODE_UPDATE << 11, [1, 1, 0, 0]), question(zone, TYPE.SOA, CLASS.IN), encodeRecord(zone, TYPE.ANY, CLASS.ANY, 0, Buffer.alloc(0))]);
}

/** Reads a possibly compressed name at `offset`; returns it and the offset after it in place. */
export function readName(message: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let position = offset;
  let next: number | undefined;
  for (let jumps = 0; ; ) {
    const length = byteAt(message, position);
    if (length === 0) {
      next ??= position + 1;
      break;
    }
    if ((length & 0xc0) === 0xc0) {
      if (++jumps > 64) throw new Error("DNS name compression loop");
      next ??= position + 2;
      position = ((length & 0x3f) << 8) | byteAt(message, position + 1);
      continue;
    }
    labels.push(message.subarray(position + 1, position + 1 + length).toString("ascii"));
    position += 1 + length;
  }
  return { name: labels.join(".").toLowerCase(), next };
}

function byteAt(message: Buffer, offset: number): number {
  const value = message[offset];
  if (value === undefined) throw new Error("DNS message ends inside a name");
  return value;
}

/** Parses an answer; throws a plain Error on a malformed one (the caller names the server). */
export function decodeResponse(message: Buffer): DnsResponse {
  if (message.length < 12) throw new Error("DNS answer shorter than its header");
  const flags = message.readUInt16BE(2);
  const counts = [4, 6, 8, 10].map((o) => message.readUInt16BE(o)) as [number, number, number, number];
  let offset = 12;
  for (let i = 0; i < counts[0]; i++) offset = readName(message, offset).next + 4;
  const section = (count: number): ResourceRecord[] => {
    const records: ResourceRecord[] = [];
    for (let i = 0; i < count; i++) {
      const start = offset;
      const { name, next } = readName(message, offset);
      const type = message.readUInt16BE(next);
      const klass = message.readUInt16BE(next + 2);
      const ttl = message.readUInt32BE(next + 4);
      const length = message.readUInt16BE(next + 8);
      const rdata = message.subarray(next + 10, next + 10 + length);
      if (rdata.length !== length) throw new Error("DNS answer ends inside a record");
      records.push({ name, type, class: klass, ttl, rdata, offset: start });
      offset = next + 10 + length;
    }
    return records;
  };
  const answers = section(counts[1]);
  const authority = section(counts[2]);
  const additional = section(counts[3]);
  return { id: message.readUInt16BE(0), rcode: flags & 0x0f, truncated: (flags & 0x0200) !== 0, answers, authority, additional };
}

/** The strings of a TXT record, joined (RFC 7208 §3.3 style; ACME values are one string). */
export function txtValue(record: ResourceRecord): string {
  const parts: string[] = [];
  for (let i = 0; i < record.rdata.length; ) {
    const length = record.rdata[i] ?? 0;
    parts.push(record.rdata.subarray(i + 1, i + 1 + length).toString("utf8"));
    i += 1 + length;
  }
  return parts.join("");
}
