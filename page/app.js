// The demo page: connects to the kit from another origin with credentials,
// shows where it landed and every message with the instance that sent it.
//
// Query parameters (all optional): server (default: this host, port 8080),
// path (default /socket.io), room (default lobby).
(function () {
  'use strict';
  const params = new URLSearchParams(location.search);
  const server = params.get('server') || `${location.protocol}//${location.hostname}:8080`;
  const path = params.get('path') || '/socket.io';
  const room = params.get('room') || 'lobby';
  // The kit's own routes live under this one reserved prefix (KIT_PREFIX in
  // socketio_kit/config/settings.py); every other path is the application's.
  const kit = `${server}/_kit`;
  const $ = (id) => document.getElementById(id);

  // What the page shows, also readable by the browser test.
  const state = window.kitState = {
    status: 'starting', instance: null, transport: null, session: null,
    cookieSet: null, errors: [], messages: [],
  };

  function show(field, value, attr) {
    state[field] = value;
    $(field).textContent = value === null ? '-' : String(value);
    if (attr) $(field).dataset.state = value;
  }

  function error(text) {
    state.errors.push(text);
    $('error').textContent = text;
  }

  $('page-origin').textContent = location.origin;
  $('server').textContent = server + path;

  // 1. Ask the API origin for a session cookie (SameSite=Lax, HttpOnly): the
  //    page cannot read it, but the browser sends it on the handshake below
  //    because localhost:PAGE and localhost:API are the same site.
  async function getCookie() {
    try {
      const resp = await fetch(`${kit}/session`, { credentials: 'include' });
      const body = await resp.json();
      state.cookieSet = body.session;
    } catch (e) {
      state.cookieSet = false;
      error(`GET ${kit}/session failed: ${e.message} (CORS: is ${location.origin} allowed?)`);
    }
  }

  // 2. With AUTH_MODE=jwt and DEMO_TOKENS=true the kit hands the demo page a
  //    token for its room (GET /_kit/token: demo only); otherwise there is none
  //    (404) and the page connects without one (AUTH_MODE=none).
  async function getToken() {
    try {
      const resp = await fetch(`${kit}/token?room=${encodeURIComponent(room)}`);
      if (resp.ok) return (await resp.json()).token;
    } catch (e) { /* no token endpoint: AUTH_MODE=none */ }
    return null;
  }

  function connect(token) {
    show('status', 'connecting', true);
    const options = { path, withCredentials: true };
    if (token) options.auth = { token };
    const socket = io(server, options);
    window.kitSocket = socket;

    socket.on('connect', () => {
      show('status', 'connected', true);
      $('error').textContent = '';
      show('transport', socket.io.engine.transport.name);
      socket.io.engine.once('upgrade', (t) => show('transport', t.name));
      socket.emit('join', { room }, (ack) => {
        if (!ack || !ack.ok) error(`join ${room} failed: ${JSON.stringify(ack)}`);
        else $('broadcast').disabled = false;
      });
    });

    socket.on('welcome', (w) => {
      show('instance', w.instance);
      // The server read the cookie from the handshake: credentials work.
      show('session', w.session === null ? 'not sent' : w.session);
    });

    socket.on('message', (m) => {
      state.messages.push(m);
      const li = document.createElement('li');
      const from = document.createElement('span');
      from.className = 'from';
      from.textContent = m.from;
      li.append(from, ` ${m.room}: ${typeof m.data === 'string' ? m.data : JSON.stringify(m.data)}`);
      $('messages').prepend(li);
    });

    socket.on('connect_error', (e) => {
      show('status', 'error', true);
      $('broadcast').disabled = true;
      error(`connect_error: ${e.message}${e.description ? ` (${e.description})` : ''}` +
            ` - the server refused ${location.origin} or is unreachable`);
    });

    socket.on('disconnect', (reason) => {
      show('status', `disconnected (${reason})`, true);
      $('broadcast').disabled = true;
    });

    $('send').addEventListener('submit', (ev) => {
      ev.preventDefault();
      socket.emit('broadcast', { room, data: $('text').value }, (ack) => {
        if (!ack || !ack.ok) error(`broadcast failed: ${JSON.stringify(ack)}`);
      });
    });
  }

  getCookie().then(getToken).then(connect);
})();
