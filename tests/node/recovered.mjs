// One real socket.io-client on examples/teamchat: joins five rooms, prints
// every `hello` (with the server's `sio.recovered(sid)`) as a JSON line, and
// after the second one the `whoami` ack (the session the app saved, kept
// across recovery) and the ack of a sixth join (the restored rooms count).
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
const call = (...args) => new Promise((resolve) => socket.emit(...args, (...ack) => resolve(ack)));
let hellos = 0;
socket.on('hello', async (hello) => {
  hellos += 1;
  if (hellos === 1) { // fill its rooms (MAX_ROOMS_PER_CLIENT=5 in the test) before the kill
    hello.joins = [];
    for (let i = 0; i < 5; i++) hello.joins.push(await call('join', `r${i}`));
  }
  console.log(JSON.stringify({ ...hello, clientRecovered: socket.recovered }));
  if (hellos === 2) { // its rooms came back, and they count
    const extra = await call('join', 'one-too-many');
    const whoami = await call('whoami');
    console.log(JSON.stringify({ whoami, extra }));
    socket.close();
  }
});
