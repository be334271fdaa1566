import { readFile } from "node:fs/promises";
import { exportServerBlocks } from "./export-server-block.js";
import { importServerBlock, NginxImportError, type ImportResult } from "./import-server-block.js";
import { NginxSyntaxError, parseNginx } from "./parse-nginx.js";

/**
 * The entry module the CLI loads lazily for `import-nginx` and `export-nginx`, so nginx-compat
 * stays out of the gateway's module graph.
 */
export { exportServerBlocks, NginxImportError, NginxSyntaxError };

/** Reads the nginx config at `file` (and its includes) and makes a gateway.yaml from it. */
export async function importNginxFile(file: string, serverName?: string): Promise<ImportResult> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new NginxImportError(`${file}: cannot read the nginx config (${(err as NodeJS.ErrnoException).code ?? "unreadable"}); give the path of the file holding the server block, e.g. /etc/nginx/sites-enabled/default`, true);
  }
  return importServerBlock(parseNginx({ text, file, displayName: file }), { file, displayName: file, ...(serverName === undefined ? {} : { serverName }) });
}
