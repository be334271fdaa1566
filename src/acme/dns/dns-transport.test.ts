import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { encodeQuery, TYPE } from "./dns-message.js";
import { exchange } from "./dns-transport.js";

describe("exchange over UDP", () => {
  it("takes the answer only from the server asked: a datagram with the right ID from another port is ignored", async () => {
    const server = createSocket("udp4");
    const spoofer = createSocket("udp4");
    server.bind(0, "127.0.0.1");
    spoofer.bind(0, "127.0.0.1");
    await Promise.all([once(server, "listening"), once(spoofer, "listening")]);
    try {
      server.on("message", (query: Buffer, client) => {
        const answer = (marker: number): Buffer => {
          const copy = Buffer.from(query);
          copy.writeUInt16BE(0x8000 | marker, 2); // QR, and RCODE as a marker of who answered
          return copy;
        };
        spoofer.send(answer(5), client.port, client.address);
        void sleep(100).then(() => server.send(answer(0), client.port, client.address));
      });
      const query = encodeQuery(0x1234, "_acme-challenge.example.com", TYPE.TXT);
      const raw = await exchange({ host: "127.0.0.1", port: (server.address()).port }, query);
      assert.equal(raw.readUInt16BE(2) & 0x0f, 0, "the answer came from the spoofing socket");
    } finally {
      server.close();
      spoofer.close();
    }
  });
});
