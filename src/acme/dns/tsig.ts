import { createHmac, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { TsigAlgorithm } from "../../config/gateway-config.js";
import { GatewayError } from "../../platform/gateway-error.js";
import { CLASS, encodeName, encodeRecord, readName, TYPE, type DnsResponse } from "./dns-message.js";

/** A TSIG key (RFC 8945): the name and algorithm the server knows it by, and the shared secret. */
export interface TsigKey {
  readonly name: string;
  readonly algorithm: TsigAlgorithm;
  readonly secret: Buffer;
}

const HASHES: Readonly<Record<TsigAlgorithm, string>> = { "hmac-sha1": "sha1", "hmac-sha224": "sha224", "hmac-sha256": "sha256", "hmac-sha384": "sha384", "hmac-sha512": "sha512" };

/** RFC 8945 §5.2.3: the server's and the signer's clocks may differ by this many seconds. */
const FUDGE_S = 300;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Reads `path`: either BIND's key statement as `tsig-keygen` writes it
 * (`key "name" { algorithm hmac-sha256; secret "base64"; };`, several allowed, `keyName` picks
 * one), or the bare base64 secret (then `keyName` is required). The file's algorithm wins over
 * the default; a written `algorithm` that disagrees with the file's is an error.
 */
export async function readTsigKey(path: string, keyName: string | null, algorithm: TsigAlgorithm | null): Promise<TsigKey> {
  const text = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new GatewayError("dns.key_unreadable", `acme.dns.key_file ${path}: cannot read it (${err.code ?? err.message}); run the gateway as a user that can read it (and chmod 600 it)`);
  });
  const statements = [...text.matchAll(/key\s+"?([^"\s{]+)"?\s*\{([^}]*)\}\s*;/g)].map(([, name = "", body = ""]) => ({
    name: name.replace(/\.$/, "").toLowerCase(),
    algorithm: /algorithm\s+"?([\w-]+)"?\s*;/.exec(body)?.[1]?.toLowerCase(),
    secret: /secret\s+"([^"]+)"\s*;/.exec(body)?.[1]?.replace(/\s+/g, ""),
  }));
  const wanted = keyName?.replace(/\.$/, "").toLowerCase() ?? null;
  if (statements.length === 0) {
    const secret = text.trim();
    if (!BASE64.test(secret)) throw new GatewayError("dns.key_invalid", `acme.dns.key_file ${path} holds neither a BIND key statement (key "name" { algorithm …; secret "…"; };) nor a base64 secret; write what tsig-keygen prints into it`);
    if (!wanted) throw new GatewayError("dns.key_invalid", `acme.dns.key_file ${path} holds a bare secret, so the key's name is unknown; set acme.dns.key_name to the name the DNS server knows the key by`);
    return { name: wanted, algorithm: algorithm ?? "hmac-sha256", secret: Buffer.from(secret, "base64") };
  }
  const statement = wanted ? statements.find((s) => s.name === wanted) : statements.length === 1 ? statements[0] : undefined;
  const names = statements.map((s) => s.name).join(", ");
  if (!statement) {
    throw new GatewayError("dns.key_invalid", wanted ? `acme.dns.key_file ${path} has no key named ${wanted} (it has ${names}); fix acme.dns.key_name` : `acme.dns.key_file ${path} holds several keys (${names}); set acme.dns.key_name to the one to use`);
  }
  if (!statement.secret || !BASE64.test(statement.secret)) throw new GatewayError("dns.key_invalid", `acme.dns.key_file ${path}: key ${statement.name} has no base64 secret "…"; write what tsig-keygen prints into it`);
  const fileAlgorithm = statement.algorithm;
  if (fileAlgorithm !== undefined && !(fileAlgorithm in HASHES)) {
    throw new GatewayError("dns.key_invalid", `acme.dns.key_file ${path}: key ${statement.name} uses ${fileAlgorithm}, which the gateway does not sign with (${Object.keys(HASHES).join(", ")}); make a new key: tsig-keygen -a hmac-sha256 ${statement.name}`);
  }
  if (algorithm && fileAlgorithm && algorithm !== fileAlgorithm) {
    throw new GatewayError("dns.key_invalid", `acme.dns.algorithm is ${algorithm}, but key ${statement.name} in ${path} is ${fileAlgorithm}; remove acme.dns.algorithm (the file's is used) or make them agree`);
  }
  return { name: statement.name, algorithm: (fileAlgorithm as TsigAlgorithm | undefined) ?? algorithm ?? "hmac-sha256", secret: Buffer.from(statement.secret, "base64") };
}

function uint48(seconds: number): Buffer {
  const buffer = Buffer.alloc(6);
  buffer.writeUIntBE(seconds, 0, 6);
  return buffer;
}

function uint16(...values: number[]): Buffer {
  const buffer = Buffer.alloc(2 * values.length);
  values.forEach((v, i) => buffer.writeUInt16BE(v, 2 * i));
  return buffer;
}

/** The TSIG variables of RFC 8945 §4.3.3, which the MAC covers after the message. */
function variables(key: TsigKey, timeSigned: Buffer, fudge: number, error: number, other: Buffer): Buffer {
  return Buffer.concat([encodeName(key.name), uint16(CLASS.ANY), Buffer.alloc(4), encodeName(key.algorithm), timeSigned, uint16(fudge, error, other.length), other]);
}

function hmac(key: TsigKey, ...parts: Buffer[]): Buffer {
  const mac = createHmac(HASHES[key.algorithm], key.secret);
  for (const part of parts) mac.update(part);
  return mac.digest();
}

/**
 * Signs `message` (RFC 8945 §4.3): appends a TSIG record and counts it in ARCOUNT. Returns the
 * signed message and its MAC, which the answer's MAC covers too.
 */
export function signMessage(message: Buffer, key: TsigKey, now: Date): { signed: Buffer; mac: Buffer } {
  const timeSigned = uint48(Math.floor(now.getTime() / 1000));
  const mac = hmac(key, message, variables(key, timeSigned, FUDGE_S, 0, Buffer.alloc(0)));
  const rdata = Buffer.concat([encodeName(key.algorithm), timeSigned, uint16(FUDGE_S, mac.length), mac, message.subarray(0, 2), uint16(0, 0)]);
  const signed = Buffer.concat([message, encodeRecord(key.name, TYPE.TSIG, CLASS.ANY, 0, rdata)]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { signed, mac };
}

/**
 * What the answer's TSIG record says (RFC 8945 §5.3): its error (BADSIG, BADKEY, BADTIME: a
 * server that rejects the request's signature answers unsigned), or whether its MAC, computed over
 * the request's MAC and the answer, verifies with `key`. Throws a plain Error on a malformed
 * record (the caller names the server), as decodeResponse does.
 */
export function checkAnswerSignature(answer: Buffer, response: DnsResponse, key: TsigKey, requestMac: Buffer): { tsigError: number; verified: boolean } {
  const record = response.additional.at(-1);
  if (!record || record.type !== TYPE.TSIG) return { tsigError: 0, verified: false };
  const rdata = record.rdata;
  const { next } = readName(rdata, 0);
  const truncated = (end: number): void => {
    if (rdata.length < end) throw new Error(`the TSIG record ends inside its fields (${rdata.length} bytes of rdata)`);
  };
  truncated(next + 10);
  const timeSigned = rdata.subarray(next, next + 6);
  const fudge = rdata.readUInt16BE(next + 6);
  const macLength = rdata.readUInt16BE(next + 8);
  const mac = rdata.subarray(next + 10, next + 10 + macLength);
  const after = next + 10 + macLength;
  truncated(after + 6);
  const originalId = rdata.subarray(after, after + 2);
  const tsigError = rdata.readUInt16BE(after + 2);
  truncated(after + 6 + rdata.readUInt16BE(after + 4));
  const other = rdata.subarray(after + 6, after + 6 + rdata.readUInt16BE(after + 4));
  if (macLength === 0 || record.name !== key.name) return { tsigError, verified: false };
  const unsigned = Buffer.from(answer.subarray(0, record.offset));
  unsigned.writeUInt16BE(unsigned.readUInt16BE(10) - 1, 10);
  originalId.copy(unsigned, 0);
  const expected = hmac(key, uint16(requestMac.length), requestMac, unsigned, variables(key, timeSigned, fudge, tsigError, other));
  return { tsigError, verified: expected.length === mac.length && timingSafeEqual(expected, mac) };
}
