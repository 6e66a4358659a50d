"""The doctor: diagnoses a live Socket.IO deployment the way a browser sees it.

`python -m doctor URL --origin ORIGIN` probes the Engine.IO handshake, CORS,
the preflight, the WebSocket upgrade through the proxy, sticky sessions, path
and namespace, the protocol version and the scheme, and prints one PASS, WARN
or FAIL line per check with what it saw and the fix.

Layout: `runner` holds the CHECKS sequence and runs it over a `probe.Probe`;
one module per check family (`scheme`, `path`, `cors`, `websocket`, `sticky`,
`namespace`, `slow`) returns `result.Result`s; `fixes` is the table of fixes
(the kit's setting vs the generic one); `wire` is raw HTTP and WebSocket.
"""
