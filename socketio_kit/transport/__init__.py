"""The kit's Engine.IO transport: its engine server (sticky sids, WebSocket
sessions on the data plane), the WebSocket framing, reader and writer, and the
few green-thread primitives they need."""
