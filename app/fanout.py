"""Local delivery of a broadcast: encoded and framed once, written to every
WebSocket member of the room.

python-socketio's `Manager.emit` encodes the Socket.IO packet once, then hands
it to Engine.IO once per recipient, where it is framed (and compressed) again
for each. Here the frame bytes are built once per variant (plain, or deflated
for clients that negotiated permessage-deflate) and the same bytes object is
queued on every member's connection. Acks and binary attachments keep
python-socketio's path, and so do long-polling members.
"""
import socketio
from engineio import packet as eio_packet
from socketio import packet

from app.replay import parse_offset
from app.websocket import Outgoing


class FanoutManager(socketio.Manager):
    """Manager whose local emit writes one ready-made frame to each member."""

    # Set by app.server.create_server from WS_COMPRESSION_THRESHOLD.
    compression_threshold: int

    # Set by app.streams.StreamsManager: sid -> list of (offset, packet)
    # held back while that client is replayed what it missed.
    holding = None
    # sid -> stream position (ms, seq) a replay already sent it up to; for a
    # few seconds after the replay, older offsets are not sent again.
    floors = None
    deduped = 0

    def emit(self, event, data, namespace, room=None, skip_sid=None,
             callback=None, to=None, offset=None, **kwargs):
        room = to or room
        if isinstance(data, tuple):
            args = list(data)
        else:
            args = [] if data is None else [data]
        if offset is not None:  # the stream offset, last (app/recovery.py)
            args.append(offset)
            data = tuple(args)
        if callback is not None or namespace not in self.rooms:
            return super().emit(event, data, namespace, room=room,
                                skip_sid=skip_sid, callback=callback, **kwargs)
        encoded = self.server.packet_class(
            packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        if isinstance(encoded, list):  # binary attachments
            return super().emit(event, data, namespace, room=room,
                                skip_sid=skip_sid, **kwargs)
        eio_pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        out = Outgoing(eio_pkt.encode(), self.compression_threshold)
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        sockets = self.server.eio.sockets
        send_eio_packet = self.server._send_eio_packet
        holding, floors = self.holding, self.floors
        position = parse_offset(offset) if floors else None
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            if holding and sid in holding:
                holding[sid].append((offset, eio_pkt))
                continue
            if position and sid in floors and position <= floors[sid]:
                self.deduped += 1
                continue
            sock = sockets.get(eio_sid)
            ws = getattr(sock, 'ws', None)
            if ws is not None and not sock.closed:
                ws.write(out.frame_for(ws.deflate_wbits))
            elif sock is not None:
                send_eio_packet(eio_sid, eio_pkt)


class KitRedisManager(socketio.RedisManager, FanoutManager):
    """python-socketio's Redis pub/sub manager with the fan-out above: what
    arrives from Redis (or is emitted here) reaches local members through
    FanoutManager.emit."""
