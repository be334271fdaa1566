import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { NGINX } from "../../test/support/nginx.js";
import { requireTool } from "../../test/support/tools.js";
import { NginxSyntaxError, parseNginx, type NginxDirective } from "../parse-nginx.js";

/** A file that is a syntax error to nginx and to parseNginx: reading it fails both. */
const DECOY = "decoy {\n";

/**
 * A Debian-style /etc/nginx in `root`/etc (sites-enabled/jupyter.conf includes proxy_params), and
 * decoys where a wrong rule would look: next to the including file, and in `root`/other, the
 * folder given as nginx -p and as --prefix where nginx.conf is not.
 */
function writeLayout(root: string, withProxyParams: boolean): { etc: string; other: string } {
  const etc = join(root, "etc");
  const other = join(root, "other");
  mkdirSync(join(etc, "sites-enabled"), { recursive: true });
  mkdirSync(join(other, "sites-enabled"), { recursive: true });
  writeFileSync(join(etc, "nginx.conf"), "events { }\nhttp {\n    include sites-enabled/*.conf;\n}\n");
  writeFileSync(join(etc, "sites-enabled", "jupyter.conf"), "server {\n    listen 127.0.0.1:8443;\n    location / {\n        include proxy_params;\n        proxy_pass http://127.0.0.1:8888;\n    }\n}\n");
  if (withProxyParams) writeFileSync(join(etc, "proxy_params"), "proxy_set_header X-Real-IP $remote_addr;\n");
  writeFileSync(join(etc, "sites-enabled", "proxy_params"), DECOY);
  writeFileSync(join(other, "proxy_params"), DECOY);
  writeFileSync(join(other, "sites-enabled", "jupyter.conf"), DECOY);
  return { etc, other };
}

/** `nginx -t -p prefix -c conf`: nginx's verdict (it reads every include; listen sockets are not opened). */
function nginxTest(prefix: string, conf: string): { ok: boolean; output: string } {
  const result = spawnSync(requireTool(NGINX, "nginx"), ["-t", "-p", `${prefix}/`, "-c", conf], { encoding: "utf8" });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

/** The file each directive came from, as parseNginx names it, in order, without repeats. */
function filesRead(directives: readonly NginxDirective[]): string[] {
  const files = directives.flatMap(function walk(d): string[] {
    return [d.where.replace(/:\d+:\d+$/, ""), ...(d.block ?? []).flatMap(walk)];
  });
  return [...new Set(files)];
}

// nginx resolves a relative include against the folder of nginx.conf (its conf prefix), for
// includes in included files too; not against the including file's folder, and not against -p.
describe("include paths: import-nginx reads what real nginx reads", () => {
  const root = mkdtempSync(join(tmpdir(), "nginx-includes-"));
  after(() => rmSync(root, { recursive: true, force: true }));

  it("a whole nginx.conf: its own folder, whatever -p or --prefix says", () => {
    const { etc, other } = writeLayout(join(root, "whole"), true);
    const conf = join(etc, "nginx.conf");
    const nginx = nginxTest(other, conf);
    assert.ok(nginx.ok, nginx.output);
    const parsed = parseNginx({ text: readFileSync(conf, "utf8"), file: conf, displayName: conf, prefix: other });
    assert.equal(parsed.confPrefix, etc);
    assert.deepEqual(filesRead(parsed.directives), [conf, join(etc, "sites-enabled", "jupyter.conf"), join(etc, "proxy_params")]);
  });

  it("a file nginx.conf includes, with --prefix the folder of nginx.conf: the same files", () => {
    const { etc } = writeLayout(join(root, "fragment"), true);
    const nginx = nginxTest(etc, join(etc, "nginx.conf"));
    assert.ok(nginx.ok, nginx.output);
    const site = join(etc, "sites-enabled", "jupyter.conf");
    const parsed = parseNginx({ text: readFileSync(site, "utf8"), file: site, displayName: site, prefix: etc });
    assert.deepEqual(filesRead(parsed.directives), [site, join(etc, "proxy_params")]);
  });

  it("a missing include: import-nginx names the path nginx looked for", () => {
    const { etc } = writeLayout(join(root, "missing"), false);
    const conf = join(etc, "nginx.conf");
    const nginx = nginxTest(etc, conf);
    const looked = /open\(\) "([^"]+)" failed \(2: No such file or directory\)/.exec(nginx.output)?.[1];
    assert.equal(looked, join(etc, "proxy_params"), nginx.output);
    const site = join(etc, "sites-enabled", "jupyter.conf");
    for (const [file, prefix] of [[conf, "/nonexistent"], [site, etc]] as const) {
      assert.throws(
        () => parseNginx({ text: readFileSync(file, "utf8"), file, displayName: file, prefix }),
        (err: Error) => err instanceof NginxSyntaxError && err.message.includes(`file not found (looked for ${looked})`),
      );
    }
  });
});
