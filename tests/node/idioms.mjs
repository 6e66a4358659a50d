// The python-socketio docs' idioms, driven by the real socket.io-client
// (Node, from page/node_modules) against examples/teamchat on two instances:
// several arguments, acks with several values, binary both ways, a
// class-based namespace, an emit to one sid. Prints one JSON line.
// Usage: node idioms.mjs URL_A URL_B ORIGIN
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../page/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [urlA, urlB, origin] = process.argv.slice(2);
const opts = { transports: ['websocket'], extraHeaders: { Origin: origin }, timeout: 5000 };
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(1); }, 20000).unref();

const once = (socket, event) => new Promise((resolve) => socket.once(event, (...args) => resolve(args)));
const call = (socket, ...args) => new Promise((resolve) => socket.emit(...args, (...ack) => resolve(ack)));

const a = io(urlA, { ...opts, auth: { name: 'ada' } });
const b = io(urlB, { ...opts, auth: { name: 'bob' } });
const [[helloA], [helloB]] = await Promise.all([once(a, 'hello'), once(b, 'hello')]);
const out = { helloA, helloB };
out.joinA = await call(a, 'join', 'r1');
out.joinB = await call(b, 'join', 'r1');
const said = once(b, 'said');
out.sayAck = await call(a, 'say', 'r1', 'hi', { n: 1 });
out.said = await said;
const file = once(b, 'file');
out.uploadAck = await call(a, 'upload', 'r1', 'f.bin', Buffer.from([0, 1, 2, 255]));
const [name, blob] = await file;
out.file = [name, Array.from(new Uint8Array(blob))];
const whisper = once(b, 'whisper');
a.emit('whisper', helloB.sid, 'psst');
out.whisper = (await whisper)[0];
out.whoamiB = await call(b, 'whoami');
const stats = io(urlA + '/stats', opts);
out.ready = (await once(stats, 'ready'))[0];
out.add = await call(stats, 'add', 2, 3);
const closing = once(b, 'closing');
a.emit('close', 'r1');
out.closing = (await closing)[0];
console.log(JSON.stringify(out));
for (const s of [a, b, stats]) s.close();
