import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { requireTool } from "../support/tools.js";

interface Finding {
  readonly id: string;
  readonly severity: string;
  readonly finding: string;
}

const PROBLEM_SEVERITIES = new Set(["LOW", "MEDIUM", "HIGH", "CRITICAL"]);

/**
 * Findings that belong to the test certificate or the loopback test bed, not to the TLS setup:
 * - cert_expirationStatus, cert_notAfter: the local CA's leaf lives 7 days, under testssl's 30-day warning;
 * - cert_revocation: a local CA publishes no CRL/OCSP (and Let's Encrypt ended OCSP in 2025);
 * - DNS_CAArecord: 127.0.0.1 has no DNS name, so no CAA record.
 */
const TEST_CERTIFICATE_FINDINGS = new Set(["cert_expirationStatus", "cert_notAfter", "cert_revocation", "DNS_CAArecord"]);

const TESTSSL_TIMEOUT_MS = 240_000;

function testssl(port: number, caFile: string, jsonFile: string): Promise<Finding[]> {
  const bin = requireTool("/usr/bin/testssl", "testssl.sh");
  return new Promise((resolve, reject) => {
    execFile(bin, ["--quiet", "--color", "0", "--fast", "--warnings", "batch", "--add-ca", caFile, "--jsonfile", jsonFile, `127.0.0.1:${port}`], { timeout: TESTSSL_TIMEOUT_MS }, (err) => {
      if (err?.killed) {
        reject(new Error(`timeout: testssl.sh did not finish within ${TESTSSL_TIMEOUT_MS / 1000} s against 127.0.0.1:${port} and was killed (a busy machine makes its many handshakes slow)`));
        return;
      }
      try {
        resolve(JSON.parse(readFileSync(jsonFile, "utf8")) as Finding[]);
      } catch {
        reject(err ?? new Error("testssl wrote no JSON"));
      }
    });
  });
}

const problems = (findings: Finding[]): Finding[] => findings.filter((f) => PROBLEM_SEVERITIES.has(f.severity));
const describeFindings = (findings: Finding[]): string => findings.map((f) => `${f.severity} ${f.id}`).join(", ") || "none";

describe("testssl.sh against the gateway and against a bare Node https server", { timeout: 300_000 }, () => {
  let dir: string;
  let upstream: Server;
  let gateway: GatewayProcess;
  let bare: Server;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gateway-testssl-"));
    upstream = createHttpServer((_req, res) => res.end("notebook stand-in\n"));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    gateway = await startGateway(dir, `listen: { address: 127.0.0.1, https: 0, http: false }
storage: ./storage
admin: false
sites:
  - hosts: [localhost, 127.0.0.1]
    upstream: http://127.0.0.1:${(upstream.address() as AddressInfo).port}
    tls: internal
`);
    // The same certificate served the naive way: TLS 1.2+ and HSTS, Node's defaults otherwise.
    const bundle = readFileSync(join(dir, "storage", "certificates", "localhost.pem"), "utf8");
    bare = createHttpsServer({ key: bundle, cert: bundle, minVersion: "TLSv1.2" }, (_req, res) => {
      res.setHeader("strict-transport-security", "max-age=31536000");
      res.end("bare\n");
    });
    await new Promise<void>((resolve) => bare.listen(0, "127.0.0.1", resolve));
  });

  after(async () => {
    await gateway?.stop();
    upstream?.close();
    bare?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("finds nothing at LOW or above in the gateway but what belongs to the test certificate, and shows what the gateway removes", async (t) => {
    const ca = join(dir, "storage", "ca", "root.crt");
    const [ours, naive] = await Promise.all([
      testssl(gateway.httpsPort, ca, join(dir, "gateway.json")),
      testssl((bare.address() as AddressInfo).port, ca, join(dir, "bare.json")),
    ]);
    t.diagnostic(`gateway: ${describeFindings(problems(ours))}`);
    t.diagnostic(`bare Node https: ${describeFindings(problems(naive))}`);
    assert.ok(ours.some((f) => f.id === "cipher_order" || f.id.startsWith("cipherlist_")), "testssl really ran its cipher checks");
    assert.deepEqual(problems(ours).filter((f) => !TEST_CERTIFICATE_FINDINGS.has(f.id)), []);
    const removed = problems(naive).filter((f) => !TEST_CERTIFICATE_FINDINGS.has(f.id)).map((f) => f.id);
    assert.ok(removed.length > 0, "the bare server draws findings the gateway does not");
    t.diagnostic(`removed by the gateway: ${removed.join(", ")}`);
  });
});
