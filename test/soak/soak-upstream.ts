import { startMisbehavingUpstream } from "../support/misbehaving-upstream.js";

/**
 * The soak's notebook stand-in, as a process of its own so the soak can SIGKILL it: HTTP (/ok,
 * /bytes/N, /upload) and a WebSocket echo on 127.0.0.1:<argv[2]>. SIGTERM closes every
 * connection and exits, as a server being restarted does.
 */
const upstream = await startMisbehavingUpstream(Number(process.argv[2]));
process.once("SIGTERM", () => void upstream.stop().then(() => process.exit(0)));
console.log(JSON.stringify({ event: "upstream.ready", port: upstream.port }));
