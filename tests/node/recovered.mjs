// One real socket.io-client on examples/teamchat: prints every `hello` (with
// the server's `sio.recovered(sid)`) as a JSON line, and after the second
// one the `whoami` ack (the session the app saved, kept across recovery).
// Usage: node recovered.mjs URL ORIGIN NAME
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../page/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [url, origin, name] = process.argv.slice(2);
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(1); }, 60000).unref();
const socket = io(url, {
  transports: ['websocket'], extraHeaders: { Origin: origin }, auth: { name },
  reconnectionDelay: 300, reconnectionDelayMax: 1000, timeout: 5000,
});
let hellos = 0;
socket.on('hello', (hello) => {
  hellos += 1;
  console.log(JSON.stringify({ ...hello, clientRecovered: socket.recovered }));
  if (hellos === 2) {
    socket.emit('whoami', (...ack) => { console.log(JSON.stringify({ whoami: ack })); socket.close(); });
  }
});
