"""What one generator process reports after connecting and after a run."""
from typing import Dict, Iterable, List

from loadtest.client import Client
from loadtest.receiver import Receiver
from loadtest.state import Sender
from loadtest.stats import Histogram


def count(items: Iterable) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def connect_report(new: List[Client], senders: List[Sender], connect_hist: Histogram,
                   errors: dict, elapsed: float, cpu: float) -> dict:
    up = [c for c in new if c.connected]
    return {'attempted': len(new), 'connected': len(up),
            'joined': sum(1 for c in new if c.state.joined),
            'errors': dict(errors), 'landed': count(c.instance for c in up),
            'transports': count(c.transport for c in up),
            'welcome_transports': count(c.welcome_transport for c in up),
            'upgrade_errors': count(c.upgrade_error for c in up if c.upgrade_error),
            # What the servers answered to the permessage-deflate offer.
            'compressed': sum(1 for c in up if c.compressed),
            'extensions': count((c._ws.extensions or 'none') if c._ws else 'no websocket'
                                for c in up),
            'sender_instances': [s.client.instance for s in senders],
            'connect_hist': connect_hist.to_dict(), 'elapsed': elapsed, 'cpu': cpu}


def tally(clients: List[Client], receiver: Receiver, senders: dict,
          include_clients: bool, timeline: list) -> dict:
    """Deliveries against what the senders had acked, per client."""
    unacked = {sid: set(info['unacked']) for sid, info in senders.items()}
    expected_each = sum(info['sent'] - len(unacked[sid]) for sid, info in senders.items())
    keys = {sid: sid.encode() for sid in senders}
    expected = received = members = missed_unaffected = 0
    lost = []
    for c in clients:
        state = c.state
        if state.start_instance is None:
            continue  # never in the room: not expected to receive
        members += 1
        got = 0
        for sid, info in senders.items():
            tracker = state.trackers.get(keys[sid])
            if tracker is not None:
                got += tracker.received_of(info['sent'], unacked[sid])
        expected += expected_each
        received += got
        missed = expected_each - got
        if state.t_lost is not None:
            lost.append({'start_instance': state.start_instance, 'lost': state.t_lost,
                         'reason': state.lost_reason, 'back': state.t_back,
                         'receiving': state.t_recv_again,
                         'new_instance': state.new_instance, 'missed': missed,
                         'recovered': c.recovery.recoveries,
                         'new_sessions': c.recovery.new_sessions})
        else:
            missed_unaffected += missed
    return {'expected': expected, 'received': received, 'members': members,
            'sampled_members': sum(1 for c in clients if c.state.sampled
                                   and c.state.start_instance is not None),
            'duplicates': receiver.duplicates, 'out_of_order': receiver.out_of_order,
            'same': receiver.same.to_dict(), 'cross': receiver.cross.to_dict(),
            'last_recv': receiver.last_recv,
            'protocol_errors': sum(c.protocol_errors for c in clients),
            'landed_now': count(c.instance for c in clients if c.connected),
            'lost_clients': lost if include_clients else len(lost),
            'missed_unaffected': missed_unaffected,
            'reconnect_failures': dict(receiver.reconnect_failures),
            'recovered_sessions': sum(c.recovery.recoveries for c in clients),
            'new_sessions': sum(c.recovery.new_sessions for c in clients),
            'replayed': sum(c.recovery.replayed for c in clients),
            'timeline': timeline}
