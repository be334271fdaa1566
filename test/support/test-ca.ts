import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireTool } from "./tools.js";

/** A throwaway CA made with openssl (independent of the gateway's own CA code). */
export interface TestCa {
  readonly certPath: string;
  readonly certPem: string;
  /** Issues a leaf for `names` into `<dir>/<label>.crt|.key`; returns the paths. */
  issue(label: string, names: readonly string[]): { certPath: string; keyPath: string; certPem: string; keyPem: string };
}

export function createTestCa(dir: string): TestCa {
  const openssl = requireTool("/usr/bin/openssl", "openssl");
  const caKey = join(dir, "test-ca.key");
  const caCert = join(dir, "test-ca.crt");
  execFileSync(openssl, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", caKey, "-out", caCert, "-days", "2", "-subj", "/CN=notebook-gateway test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], { stdio: "pipe" });
  return {
    certPath: caCert,
    certPem: readFileSync(caCert, "utf8"),
    issue(label, names) {
      const keyPath = join(dir, `${label}.key`);
      const certPath = join(dir, `${label}.crt`);
      const csr = join(dir, `${label}.csr`);
      const ext = join(dir, `${label}.ext`);
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(",");
      writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n`);
      execFileSync(openssl, ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyPath, "-out", csr, "-subj", `/CN=${names[0]}`], { stdio: "pipe" });
      execFileSync(openssl, ["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-days", "1", "-out", certPath, "-extfile", ext], { stdio: "pipe" });
      return { certPath, keyPath, certPem: readFileSync(certPath, "utf8"), keyPem: readFileSync(keyPath, "utf8") };
    },
  };
}

/** Replaces a file the way certbot or an editor would: new content, then rename over it. */
export function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.new`, content, { mode: 0o600 });
  renameSync(`${path}.new`, path);
}

/** One e2e file's temp folder, with a test CA and a leaf for `names` ("site.crt"/"site.key") in it. */
export function createTestBed(prefix: string, names: readonly string[]): { dir: string; ca: TestCa; leaf: ReturnType<TestCa["issue"]> } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const ca = createTestCa(dir);
  return { dir, ca, leaf: ca.issue("site", names) };
}
