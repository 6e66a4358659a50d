// COUNT real socket.io-clients (Node, from page/node_modules) join ROOM and
// record every `message` per sender sequence, every (re)connect with
// `socket.recovered`, and the instances they saw. Driven over stdin, one
// command a line; each answer is one JSON line on stdout:
//   state                 -> {ready, clients: [{i, instance, recovered, connects}]}
//   drop I MS             -> client I loses its transport, comes back after MS ms
//   forge I random|sid:J  -> client I reconnects with a forged pid (random, or
//                            client J's public sid) and a valid offset
//   steal I J             -> client I reconnects with client J's pid
//   remember I VALUE      -> client I emits `remember` {value: VALUE}: {i, ack}
//   whoami I              -> client I emits `whoami`: {i, ack} (ack.remembered)
//   report                -> per client: connects, recovered flags, seqs per sender
//   exit
// Usage: node recovery.mjs URL ORIGIN COUNT ROOM
// With KIT_TEST_TOKEN set (a cluster on AUTH_MODE=jwt), every client sends it
// as `auth: {token}`, next to its pid and offset.
import { createRequire } from 'node:module';
import readline from 'node:readline';

const require = createRequire(new URL('../../page/package.json', import.meta.url));
const { io } = require('socket.io-client');

const [url, origin, count, room] = process.argv.slice(2);
const out = (o) => console.log(JSON.stringify(o));
setTimeout(() => { out({ error: 'timeout' }); process.exit(1); }, 300000).unref();

const clients = [];
for (let i = 0; i < Number(count); i++) {
  const c = {
    i, instance: null, instances: [], connects: [], seqs: {}, times: {}, joined: false, offsets: 0,
    disconnects: [],
  };
  const socket = io(url, {
    transports: ['websocket'], extraHeaders: { Origin: origin },
    reconnectionDelay: 500, reconnectionDelayMax: 1500, timeout: 5000,
    ...(process.env.KIT_TEST_TOKEN ? { auth: { token: process.env.KIT_TEST_TOKEN } } : {}),
  });
  c.socket = socket;
  socket.on('connect', () => {
    c.connects.push({ recovered: socket.recovered, at: Date.now() });
    if (!socket.recovered) { // a new session: join again, as an app would
      c.joined = false;
      socket.emit('join', { room }, (ack) => { c.joined = Boolean(ack && ack.ok); });
    }
  });
  socket.on('disconnect', (reason) => { c.disconnects.push([reason, Date.now()]); });
  socket.io.on('reconnect_attempt', (n) => { c.attempts = n; });
  socket.on('connect_error', (e) => { (c.errors ||= []).push([String(e.message), Date.now()]); });
  socket.on('welcome', (w) => { c.instance = w.instance; c.instances.push(w.instance); });
  socket.on('message', (msg, offset) => {
    const d = msg.data;
    if (typeof offset === 'string') c.offsets += 1;
    (c.seqs[d.s] ||= []).push(d.q);
    (c.times[d.s] ||= []).push(Date.now() / 1000);
  });
  clients.push(c);
}

function reconnectWith(c, pid) {
  const socket = c.socket;
  socket.io.reconnectionDelay(100);
  socket.io.reconnectionDelayMax(100);
  socket.io.engine.close();           // transport lost: the client reconnects
  socket._pid = pid;                  // ... presenting this pid (and its offset)
}

function call(i, event, payload) {  // answers once the ack is back (or 5 s)
  clients[Number(i)].socket.timeout(5000).emit(event, payload, (err, ack) => {
    out(err ? { i: Number(i), error: String(err.message || err) } : { i: Number(i), ack });
  });
}

const commands = {
  state: () => out({
    ready: clients.every((c) => c.joined && c.socket.connected),
    clients: clients.map((c) => ({
      i: c.i, instance: c.instance, connected: c.socket.connected, sid: c.socket.id,
      recovered: c.socket.recovered, connects: c.connects.length,
    })),
  }),
  drop: (i, ms) => {
    const socket = clients[i].socket;
    socket.io.randomizationFactor(0);
    socket.io.reconnectionDelay(Number(ms));
    socket.io.reconnectionDelayMax(Number(ms));
    socket.io.engine.close();
    out({ dropped: Number(i) });
  },
  forge: (i, how) => {
    const pid = how === 'random' ? 'Zm9yZ2VkLXBpZC0xMjM0NTY'
      : clients[Number(how.split(':')[1])].socket.id;
    reconnectWith(clients[i], pid);
    out({ forged: Number(i) });
  },
  steal: (i, j) => {
    reconnectWith(clients[i], clients[j].socket._pid);
    out({ stole: Number(i) });
  },
  remember: (i, value) => call(i, 'remember', { value }),
  whoami: (i) => call(i, 'whoami', {}),
  report: () => out({
    clients: clients.map((c) => ({
      i: c.i, instances: c.instances, connects: c.connects, seqs: c.seqs, times: c.times,
      offsets: c.offsets, disconnects: c.disconnects, attempts: c.attempts, errors: c.errors, sid: c.socket.id, connected: c.socket.connected,
    })),
  }),
  exit: () => { clients.forEach((c) => c.socket.close()); process.exit(0); },
};

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, ...args] = line.trim().split(/\s+/);
  if (commands[cmd]) commands[cmd](...args);
  else out({ error: `unknown command ${cmd}` });
});
