// The stock socket.io-client (Node, from page/node_modules) as a page on
// another origin uses it: io(url) with the library's defaults (polling first,
// then the upgrade to WebSocket, reconnection on) and no withCredentials, so
// no cookie ever travels. Node sends no Origin of its own; extraHeaders gives
// it the page's, as a browser would. It waits for the upgrade, then calls
// `whoami` with an ack. Prints one JSON line: what the client saw, including
// every error and reconnect attempt (there must be none). Usage:
//   node stock.mjs URL ORIGIN
import { createRequire } from 'node:module';
const require = createRequire(new URL('../../page/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [url, origin] = process.argv.slice(2);
const seen = { errors: [], reconnects: 0, transports: [] };
const socket = io(url, {
  extraHeaders: { Origin: origin },
  ...(process.env.KIT_TEST_TOKEN ? { auth: { token: process.env.KIT_TEST_TOKEN } } : {}),
});
const report = (extra) => {
  const engine = socket.io.engine;
  console.log(JSON.stringify({
    ...seen, ...extra,
    withCredentials: engine ? engine.opts.withCredentials : null,
    cookieJar: Boolean(engine && engine._cookieJar),
  }));
  socket.close();
  process.exit(0);
};
setTimeout(() => report({ ok: false, error: 'timeout' }), 20000).unref();
socket.io.on('reconnect_attempt', () => { seen.reconnects += 1; });
socket.io.on('error', (err) => { seen.errors.push(`${err.message} ${err.description ?? ''}`.trim()); });
socket.on('connect_error', (err) => { seen.errors.push(`connect_error: ${err.message}`); });
// The transport the session opened on, and its upgrade: watched from the
// engine's open, since the upgrade may finish before Socket.IO's connect.
let upgraded = null;
socket.io.on('open', () => {
  const engine = socket.io.engine;
  seen.transports.push(engine.transport.name);
  engine.on('upgradeError', (err) => { seen.errors.push(`upgradeError: ${err.message}`); });
  upgraded = new Promise((resolve) => engine.once('upgrade', (transport) => {
    seen.transports.push(transport.name);
    resolve();
  }));
});
socket.on('connect', async () => {
  await upgraded;
  const ack = await socket.timeout(5000).emitWithAck('whoami', {});
  report({ ok: true, ack, transport: socket.io.engine.transport.name });
});
