import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDuration } from "../config/duration.js";
import { DEFAULT_TIMEOUTS } from "../config/gateway-config.js";
import { GATEWAY_YAML } from "../config/gateway-yaml-schema.js";
import { silentLogger } from "../platform/logger.js";
import { createHttpListener } from "./http-listener.js";

describe("http listener", () => {
  it("takes the longest timeouts.headers the config admits (Node refuses a headersTimeout above requestTimeout)", () => {
    const headersMs = parseDuration(GATEWAY_YAML.properties.timeouts.properties.headers.maximumDuration) ?? NaN;
    const unused = (): never => {
      throw new Error("not asked for when the listener is made");
    };
    const server = createHttpListener(unused, unused, () => 443, { ...DEFAULT_TIMEOUTS, headersMs }, silentLogger);
    assert.equal(server.headersTimeout, headersMs);
    assert.ok(server.requestTimeout >= headersMs);
  });
});
