import { readFile } from "node:fs/promises";
import { exportServerBlocks } from "./export-server-block.js";
import { importServerBlock, NginxImportError, type ImportResult } from "./import-server-block.js";
import { NginxSyntaxError, parseNginx } from "./parse-nginx.js";

/**
 * The entry module the CLI loads lazily for `import-nginx` and `export-nginx`, so nginx-compat
 * stays out of the gateway's module graph.
 */
export { exportServerBlocks, NginxImportError, NginxSyntaxError };

/** What `gateway import-nginx` was asked for besides the file. */
export interface ImportNginxOptions {
  /** --server-name: the server block to import when several proxy to a notebook. */
  readonly serverName?: string;
  /**
   * --prefix: the folder of the nginx.conf that includes the file, against which nginx resolves
   * relative include and ssl_certificate paths. Default /etc/nginx, where Debian, Ubuntu, Fedora
   * and nginx.org's packages keep it. Not used when the file is itself a whole nginx.conf.
   */
  readonly prefix?: string;
}

/** Reads the nginx config at `file` (and its includes) and makes a gateway.yaml from it. */
export async function importNginxFile(file: string, options: ImportNginxOptions): Promise<ImportResult> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new NginxImportError(`${file}: cannot read the nginx config (${(err as NodeJS.ErrnoException).code ?? "unreadable"}); give the path of the file holding the server block, e.g. /etc/nginx/sites-enabled/default`, true);
  }
  const config = parseNginx({ text, file, displayName: file, prefix: options.prefix ?? "/etc/nginx" });
  return importServerBlock(config, { displayName: file, ...(options.serverName === undefined ? {} : { serverName: options.serverName }) });
}
