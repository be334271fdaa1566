import { randomUUID } from "node:crypto";
import type { LookupFunction } from "node:net";
import { Agent, request, type Dispatcher } from "undici";
import WebSocket from "ws";

/** Resolves every name to 127.0.0.1, so public-looking names reach the gateway on loopback. */
export const loopbackLookup: LookupFunction = (_host, options, callback) => {
  if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
  else callback(null, "127.0.0.1", 4);
};

/** An HTTPS client that trusts exactly `ca` and resolves every name to loopback. */
export function trustingAgent(ca: string): Agent {
  return new Agent({ connect: { ca, lookup: loopbackLookup } });
}

/**
 * Talks to a notebook through the gateway the way the classic UI does: login form with _xsrf,
 * cookies, REST calls with X-XSRFToken, kernel channels over a WebSocket.
 */
export class NotebookClient {
  readonly cookies = new Map<string, string>();

  constructor(
    /** e.g. https://jupyter.example.test:8443 */
    readonly origin: string,
    readonly ca: string,
    readonly dispatcher: Dispatcher = trustingAgent(ca),
  ) {}

  async login(password: string | null): Promise<void> {
    if (password === null) throw new Error("this notebook has no password to log in with");
    const page = await this.request("GET", "/login");
    await page.body.text();
    const res = await this.request("POST", "/login?next=%2Ftree", {
      body: new URLSearchParams({ password, _xsrf: this.cookies.get("_xsrf") ?? "" }).toString(),
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    await res.body.text();
    if (res.statusCode !== 302) throw new Error(`login answered ${res.statusCode}, expected 302`);
  }

  async request(method: Dispatcher.HttpMethod, path: string, options: { body?: Dispatcher.DispatchOptions["body"]; headers?: Record<string, string> } = {}): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = { cookie: this.cookieHeader(), ...options.headers };
    if (method !== "GET" && method !== "HEAD") {
      headers.origin ??= this.origin;
      if (this.cookies.has("_xsrf")) headers["x-xsrftoken"] ??= this.cookies.get("_xsrf") as string;
    }
    const res = await request(`${this.origin}${path}`, { method, headers, body: options.body ?? null, dispatcher: this.dispatcher });
    const setCookie = res.headers["set-cookie"];
    for (const line of Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : []) {
      const [pair] = line.split(";");
      const eq = (pair ?? "").indexOf("=");
      if (eq > 0) this.cookies.set((pair as string).slice(0, eq).trim(), (pair as string).slice(eq + 1).trim());
    }
    return res;
  }

  async json<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } });
    const text = await res.body.text();
    if (res.statusCode >= 300) throw new Error(`${method} ${path} answered ${res.statusCode}: ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  }

  async startKernel(): Promise<string> {
    return (await this.json<{ id: string }>("POST", "/api/kernels", { name: "python3" })).id;
  }

  /** Opens the kernel's channels WebSocket through the gateway (wss), with the browser's Origin. */
  async openChannels(kernelId: string, origin = this.origin): Promise<KernelChannels> {
    const url = `${this.origin.replace(/^https/, "wss")}/api/kernels/${kernelId}/channels?session_id=${randomUUID()}`;
    const ws = new WebSocket(url, { ca: this.ca, lookup: loopbackLookup, headers: { cookie: this.cookieHeader(), origin } });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("unexpected-response", (_req, res) => reject(new Error(`WebSocket refused: HTTP ${res.statusCode}`)));
      ws.once("error", reject);
    });
    return new KernelChannels(ws);
  }

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

/** The kernel's Jupyter-protocol channels over one WebSocket. */
export class KernelChannels {
  constructor(readonly ws: WebSocket) {}

  /** Runs `code` and resolves with the text/plain of its execute_result (or stream output). */
  execute(code: string, timeoutMs = 20_000): Promise<string> {
    const msgId = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.ws.off("message", onMessage);
        reject(new Error(`no result for ${JSON.stringify(code)} within ${timeoutMs} ms`));
      }, timeoutMs);
      const onMessage = (data: WebSocket.RawData): void => {
        const msg = JSON.parse(data.toString()) as { parent_header?: { msg_id?: string }; msg_type?: string; content?: { data?: Record<string, string>; text?: string } };
        if (msg.parent_header?.msg_id !== msgId) return;
        const text = msg.msg_type === "execute_result" ? msg.content?.data?.["text/plain"] : msg.msg_type === "stream" ? msg.content?.text?.trim() : undefined;
        if (text === undefined) return;
        clearTimeout(timer);
        this.ws.off("message", onMessage);
        resolve(text);
      };
      this.ws.on("message", onMessage);
      this.ws.send(JSON.stringify({
        header: { msg_id: msgId, username: "test", session: randomUUID(), msg_type: "execute_request", version: "5.3", date: new Date().toISOString() },
        parent_header: {}, metadata: {}, channel: "shell",
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      }));
    });
  }

  close(): void {
    this.ws.close();
  }
}
