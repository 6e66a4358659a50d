// The real socket.io-client (Node, from page/node_modules) connects with
// `auth: { token }`, joins rooms and, on /_kit, asks for stats. Prints one
// JSON line: {connected, error, joins: {room: ack}, stats}. Usage:
//   node auth.mjs URL ORIGIN NAMESPACE TOKEN|- ROOM,ROOM|-
import { createRequire } from 'node:module';
const require = createRequire(new URL('../../page/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [url, origin, namespace, token, rooms] = process.argv.slice(2);
const options = {
  transports: ['polling', 'websocket'], reconnection: false, timeout: 10000,
  extraHeaders: { Origin: origin }, withCredentials: true,
};
if (token !== '-') options.auth = { token };
const socket = io(url + namespace, options);
const done = (result) => { console.log(JSON.stringify(result)); socket.close(); process.exit(0); };
setTimeout(() => done({ connected: false, error: 'timeout' }), 15000).unref();
socket.on('connect_error', (err) => done({ connected: false, error: err.message }));
socket.on('connect', async () => {
  const joins = {};
  for (const room of rooms === '-' ? [] : rooms.split(',')) {
    joins[room] = await socket.emitWithAck('join', { room });
  }
  const stats = namespace === '/_kit' ? await socket.emitWithAck('stats', {}) : null;
  done({ connected: true, joins, stats });
});
