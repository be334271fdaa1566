import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Agent, request } from "undici";
import WebSocket, { WebSocketServer } from "ws";
import { runGateway, startGateway, type GatewayProcess } from "../support/gateway-process.js";
import { waitFor } from "../support/processes.js";
import { servedCertificate } from "../support/tls-probe.js";
import { notebookStandIn } from "../support/notebook-stand-in.js";

const SITE = "localhost";

/** One sample of a metric (labels as written by the gateway), or undefined. */
function sample(metrics: string, name: string, labels = ""): number | undefined {
  const line = metrics.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

/**
 * nginx's combined format as goaccess's COMBINED and fail2ban's nginx filters read it; a
 * WebSocket's line adds ` ws_received=N ws_seconds=S`, which those readers ignore.
 */
const COMBINED = /^(\S+) \S+ \S+ \[(\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\] "(\S+) (\S+) (HTTP\/[\d.]+)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)"(?: ws_received=(\d+) ws_seconds=(\d+\.\d{3}))?$/;

describe("admin endpoint: /healthz, /status, /metrics during a real run", { timeout: 120_000 }, () => {
  let dir: string;
  let upstream: Server;
  let echo: WebSocketServer;
  let gateway: GatewayProcess;
  let admin: string;
  let ca: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "gateway-admin-"));
    upstream = createServer(notebookStandIn((req, res) => res.writeHead(req.url === "/missing" ? 404 : 200).end("ok\n")));
    echo = new WebSocketServer({ server: upstream });
    echo.on("connection", (ws) => ws.on("message", (m) => ws.send(m)));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    gateway = await startGateway(dir, `listen: { address: 127.0.0.1, https: 0, http: false }
storage: ./storage
admin: 127.0.0.1:0
logs: { access: ./access.log }
sites:
  - host: ${SITE}
    upstream: http://127.0.0.1:${(upstream.address() as AddressInfo).port}
    tls: internal
`);
    const ready = gateway.events().find((e) => e.event === "gateway.ready");
    admin = `http://127.0.0.1:${ready?.admin as number}`;
    ca = readFileSync(join(dir, "storage", "ca", "root.crt"), "utf8");
  });

  after(async () => {
    await gateway?.stop();
    echo?.close();
    upstream?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const scrape = async (path = "/metrics"): Promise<string> => (await request(`${admin}${path}`)).body.text();

  it("answers /healthz on loopback", async () => {
    const res = await request(`${admin}/healthz`);
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), "ok\n");
  });

  it("metrics move with requests, WebSockets and a renewal; the expiry metric matches the served certificate", async () => {
    const dispatcher = new Agent({ connect: { ca } });
    const url = `https://${SITE}:${gateway.httpsPort}`;
    for (const path of ["/", "/", "/missing"]) await (await request(`${url}${path}`, { dispatcher })).body.text();
    let metrics = await scrape();
    assert.equal(sample(metrics, "gateway_requests_total", `{site="${SITE}",status="200"}`), 2);
    assert.equal(sample(metrics, "gateway_requests_total", `{site="${SITE}",status="404"}`), 1);

    const ws = new WebSocket(`wss://${SITE}:${gateway.httpsPort}/ws`, { ca, headers: { origin: url } });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    metrics = await scrape();
    assert.equal(sample(metrics, "gateway_websockets_open"), 1);
    ws.close();
    await waitFor("the WebSocket gauge back to 0", async () => (sample(await scrape(), "gateway_websockets_open") === 0 ? true : undefined), 5000);

    const before = sample(metrics, "gateway_certificate_expiry_timestamp_seconds", `{site="${SITE}"}`);
    const served = await servedCertificate(gateway.httpsPort, SITE, ca);
    assert.equal(before, Math.floor(new Date(served.validTo).getTime() / 1000));

    await new Promise((r) => setTimeout(r, 1100)); // a renewed certificate gets a later notAfter
    const renew = await runGateway(["renew", "--force", "--config", gateway.configPath, "--quiet"]);
    assert.equal(renew.status, 0, renew.stderr);
    const renewed = await waitFor("the renewed certificate in the metric", async () => {
      const value = sample(await scrape(), "gateway_certificate_expiry_timestamp_seconds", `{site="${SITE}"}`);
      return value !== undefined && value !== before ? value : undefined;
    }, 10_000, 200);
    const servedNow = await servedCertificate(gateway.httpsPort, SITE, ca);
    assert.equal(renewed, Math.floor(new Date(servedNow.validTo).getTime() / 1000));
  });

  it("the access log is nginx's combined format, one line per request, secrets redacted", async () => {
    const dispatcher = new Agent({ connect: { ca } });
    const before = readFileSync(join(dir, "access.log"), "utf8").split("\n").filter(Boolean).length;
    // A same-site Referer is rewritten for the notebook; the log shows what the client sent.
    const referer = `https://${SITE}:${gateway.httpsPort}/lab?token=s3cret`;
    await (await request(`https://${SITE}:${gateway.httpsPort}/tree?token=s3cret&x=1`, { dispatcher, headers: { "user-agent": 'curl "quoted"', referer } })).body.text();
    const lines = await waitFor("the new access log line", () => {
      const all = readFileSync(join(dir, "access.log"), "utf8").split("\n").filter(Boolean);
      return all.length > before ? all : undefined;
    });
    const combined = COMBINED;
    for (const line of lines) assert.match(line, combined);
    assert.equal(lines.length, before + 1, "one line per request");
    const last = combined.exec(lines.at(-1) ?? "");
    assert.equal(last?.[1], "127.0.0.1");
    assert.equal(last?.[4], "/tree?token=REDACTED&x=1");
    assert.equal(last?.[6], "200");
    assert.equal(last?.[8], `https://${SITE}:${gateway.httpsPort}/lab?token=REDACTED`, "the Referer as the client sent it, its token redacted");
    assert.equal(last?.[9], "curl \\x22quoted\\x22");
    assert.equal(last?.[10], undefined, "no WebSocket fields on a plain request");
  });

  it("logs a WebSocket once, when it closes: 101, bytes sent, bytes received, duration; a refused one with its status", async () => {
    const logPath = join(dir, "access.log");
    const before = readFileSync(logPath, "utf8").split("\n").filter(Boolean).length;
    const ws = new WebSocket(`wss://${SITE}:${gateway.httpsPort}/api/kernels/k1/channels?token=s3cret`, { ca, headers: { "user-agent": "ws-test" } });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    const echoed = new Promise((resolve) => ws.once("message", resolve));
    ws.send("x".repeat(1000));
    await echoed;
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(readFileSync(logPath, "utf8").split("\n").filter(Boolean).length, before, "nothing is logged while the WebSocket is open");
    ws.close();
    const refused = new WebSocket(`wss://${SITE}:${gateway.httpsPort}/api/kernels/k2/channels`, { ca, origin: "https://evil.example" });
    await new Promise((resolve) => refused.once("error", resolve).once("close", resolve));
    const lines = await waitFor("both WebSocket lines", () => {
      const all = readFileSync(logPath, "utf8").split("\n").filter(Boolean).slice(before);
      return all.length >= 2 ? all : undefined;
    });
    assert.equal(lines.length, 2, lines.join("\n"));
    const session = COMBINED.exec(lines.find((l) => l.includes("/k1/")) ?? "");
    assert.ok(session, lines.join("\n"));
    assert.equal(session[4], "/api/kernels/k1/channels?token=REDACTED");
    assert.equal(session[6], "101");
    assert.ok(Number(session[7]) > 1000, `bytes sent to the client ${session[7]} include the 1000-byte echo`);
    assert.ok(Number(session[10]) > 1000, `bytes received ${session[10]} include the 1000-byte message`);
    assert.ok(Number(session[11]) >= 0.2 && Number(session[11]) < 30, `duration ${session[11]} s`);
    const refusal = COMBINED.exec(lines.find((l) => l.includes("/k2/")) ?? "");
    assert.equal(refusal?.[6], "403", lines.join("\n"));
  });

  it("/status has the certificate and upstream of each site", async () => {
    const status = JSON.parse(await scrape("/status")) as Array<Record<string, unknown>>;
    assert.equal(status[0]?.site, SITE);
    assert.equal(status[0]?.tls, "internal");
    assert.match(String(status[0]?.issuer), /notebook-gateway local CA/);
    assert.equal(status[0]?.notebook, "protected");
    assert.match(String(status[0]?.checked_at), /^\d{4}-\d\d-\d\dT/);
    const keys = (value: unknown): string[] => (value && typeof value === "object" ? Object.entries(value).flatMap(([k, v]) => [k, ...keys(v)]) : []);
    assert.deepEqual(keys(status).filter((k) => !/^[a-z0-9_]+$/.test(k)), [], "every key is snake_case, as in gateway.yaml and the logs");
  });
});
