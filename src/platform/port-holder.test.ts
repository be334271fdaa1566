import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type AddressInfo } from "node:net";
import { it } from "node:test";
import { describePortHolder, findPortHolder } from "./port-holder.js";

it("names the process listening on a port, and nobody for a port no one listens on", async () => {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  try {
    const holder = findPortHolder(port);
    assert.ok(holder);
    assert.equal(holder.pid, process.pid);
    assert.equal(holder.uid, process.getuid?.());
    // The command line, shortened past a length: this process is node running a test file.
    assert.match(describePortHolder(holder), new RegExp(`^pid ${process.pid} \\(\\S*node .*(port-holder\\.test\\.js|\\.\\.\\.)\\)$`));
  } finally {
    server.close();
  }
  await once(server, "close");
  assert.equal(findPortHolder(port), null);
});
