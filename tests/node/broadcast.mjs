// One real socket.io-client (Node, from page/node_modules) joins a room,
// broadcasts one message of SIZE characters and waits for it to come back.
// Prints one JSON line: what the client saw. Usage:
//   node broadcast.mjs URL ORIGIN TRANSPORTS SIZE
// With KIT_TEST_TOKEN set (a cluster on AUTH_MODE=jwt), it sends `auth: {token}`.
import { createRequire } from 'node:module';
const require = createRequire(new URL('../../page/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [url, origin, transports, size] = process.argv.slice(2);
const data = 'y'.repeat(Number(size));
const socket = io(url, {
  transports: transports.split(','), reconnection: false,
  extraHeaders: { Origin: origin }, timeout: 10000, withCredentials: true,
  ...(process.env.KIT_TEST_TOKEN ? { auth: { token: process.env.KIT_TEST_TOKEN } } : {}),
});
const fail = (error) => { console.log(JSON.stringify({ ok: false, error: String(error) })); process.exit(1); };
setTimeout(() => fail('timeout'), 15000).unref();
socket.on('connect_error', fail);
socket.on('welcome', async (welcome) => {
  const joined = await socket.emitWithAck('join', { room: 'node' });
  socket.on('message', (msg) => {
    const engine = socket.io.engine;
    console.log(JSON.stringify({
      ok: msg.data === data, instance: welcome.instance, joined: joined.ok,
      transport: engine.transport.name,
      extensions: engine.transport.ws ? engine.transport.ws.extensions : null,
    }));
    socket.close();
    process.exit(0);
  });
  await socket.emitWithAck('broadcast', { room: 'node', data });
});
