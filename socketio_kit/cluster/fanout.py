"""Local delivery of a broadcast: encoded and framed once, written to every
WebSocket member of the room.

python-socketio's `Manager.emit` encodes the Socket.IO packet once, then hands
it to Engine.IO once per recipient, where it is framed (and compressed) again
for each. Here the frame bytes are built once per variant (plain, or deflated
for clients that negotiated permessage-deflate) and the same bytes object is
queued on every member's connection. Acks and binary attachments keep
python-socketio's path, and so do long-polling members.
"""
import time

import socketio
from engineio import packet as eio_packet
from socketio import packet

from socketio_kit.cluster.entries import parse_offset
from socketio_kit.cluster.rooms import RoomIndex
from socketio_kit.observability.metrics import NULL_METRICS
from socketio_kit.transport.websocket import Outgoing


class FanoutManager(RoomIndex, socketio.Manager):
    """Manager whose local emit writes one ready-made frame to each member."""

    # Set by socketio_kit.Server from WS_COMPRESSION_THRESHOLD.
    compression_threshold: int

    @property
    def metrics(self):
        """The server's Metrics (observability/metrics.py); none on a write-only manager."""
        return getattr(self.server, 'metrics', NULL_METRICS)

    # Set by socketio_kit.cluster.streams.StreamsManager: sid -> list of (offset, packet)
    # held back while that client is replayed what it missed.
    holding = None
    # sid -> stream position (ms, seq) a replay already sent it up to; for a
    # few seconds after the replay, older offsets are not sent again.
    floors = None
    deduped = 0

    def emit(self, event, data, namespace, room=None, skip_sid=None,
             callback=None, to=None, offset=None, **kwargs):
        room = to or room
        if namespace not in self.rooms:
            # Nobody is connected to it here (any more: the last member may
            # have just left on a ping timeout): nothing to deliver.
            return
        started = time.perf_counter()
        if isinstance(data, tuple):
            args = list(data)
        else:
            args = [] if data is None else [data]
        if offset is not None:  # the stream offset, last (socketio_kit/recovery/hooks.py)
            args.append(offset)
            data = tuple(args)
        encoded = None
        if callback is None:
            encoded = self.server.packet_class(
                packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        if encoded is None or isinstance(encoded, list):
            # Acks (an id per member) and binary attachments: python-socketio's path.
            self.metrics.events_sent(event, sum(
                1 for _ in self.get_participants(namespace, room)))
            return super().emit(event, data, namespace, room=room,
                                skip_sid=skip_sid, callback=callback, **kwargs)
        eio_pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        out = Outgoing(eio_pkt.encode(), self.compression_threshold)
        plain = out.frame_for(0)
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        sockets = self.server.eio.sockets
        send_eio_packet = self.server._send_eio_packet
        sent = 0
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
                wbits = ws.deflate_wbits
                ws.write(out.frame_for(wbits) if wbits else plain)
            elif sock is not None:
                send_eio_packet(eio_sid, eio_pkt)
            sent += 1
        self._count(event, room, namespace, sent, started)

    def _count(self, event, room, namespace, sent, started):
        metrics = self.metrics
        metrics.events_sent(event, sent)
        # A broadcast is an emit to a room or to all, not to one client's sid.
        # Writing to a member can close its session (a ping timeout found on
        # send, a full polling queue), and the last one to go takes the
        # namespace with it.
        rooms = self.rooms.get(namespace, {})
        if room is None or (room in rooms and room not in rooms.get(None, ())):
            metrics.fanout(time.perf_counter() - started)
