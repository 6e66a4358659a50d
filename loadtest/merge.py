"""Adding up what the generator processes reported."""
import math
from typing import Dict, List

from loadtest.stats import Histogram


def merge_counts(dicts) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for d in dicts:
        for k, v in (d or {}).items():
            out[str(k)] = out.get(str(k), 0) + v
    return dict(sorted(out.items()))


def merge_hist(dicts) -> Histogram:
    return Histogram.merged(Histogram.from_dict(d) for d in dicts)


def merge_timeline(parts: List[list], t0: float, step: float = 0.5) -> dict:
    """Connected clients per instance over time, summed over workers.

    Each worker sampled at its own instants; take each worker's last sample
    in every step-wide bin, then add the workers up."""
    bins: Dict[int, Dict[str, int]] = {}
    lasts = []
    for samples in parts:
        last: Dict[int, dict] = {}
        for ts, counts in samples:
            last[int(math.floor((ts - t0) / step))] = counts
        lasts.append(last)
    # Keep only the bins every worker sampled: a bin one worker had already
    # stopped sampling would show its clients as gone.
    if lasts and all(lasts):
        low = max(min(last) for last in lasts)
        high = min(max(last) for last in lasts)
        lasts = [{b: c for b, c in last.items() if low <= b <= high} for last in lasts]
    for last in lasts:
        for b, counts in last.items():
            acc = bins.setdefault(b, {})
            for inst, n in counts.items():
                acc[str(inst)] = acc.get(str(inst), 0) + n
    times = sorted(bins)
    instances = sorted({i for b in bins.values() for i in b})
    return {'t': [round(b * step, 3) for b in times],
            'instances': {i: [bins[b].get(i, 0) for b in times] for i in instances}}


def delivery(duration: float, t0: float, senders: dict, tallies: List[dict]) -> dict:
    """Delivery, duplicates, order and (sampled) latency over all processes."""
    same = merge_hist(t['same'] for t in tallies)
    cross = merge_hist(t['cross'] for t in tallies)
    overall = Histogram.merged([same, cross])
    ack = merge_hist(s['ack'] for s in senders.values())
    expected = sum(t['expected'] for t in tallies)
    received = sum(t['received'] for t in tallies)
    sent = sum(s['sent'] for s in senders.values())
    unacked = sum(len(s['unacked']) for s in senders.values())
    lasts = [t['last_recv'] for t in tallies if t['last_recv']]
    window = (max(lasts) - t0) if lasts else None
    return {
        'senders': len(senders), 'members': sum(t['members'] for t in tallies),
        'latency_sampled_members': sum(t['sampled_members'] for t in tallies),
        'sent': sent, 'acked': sent - unacked, 'unacked': unacked,
        'refused': sum(s['refused'] for s in senders.values()),
        'skipped_while_disconnected': sum(s['skipped'] for s in senders.values()),
        'sends_late_over_1s': sum(s['late'] for s in senders.values()),
        'send_rate_achieved': round(sent / duration, 2),
        'expected': expected, 'received': received,
        'delivery_ratio': round(received / expected, 6) if expected else None,
        'duplicates': sum(t['duplicates'] for t in tallies),
        'out_of_order': sum(t['out_of_order'] for t in tallies),
        'same_instance_deliveries': same.count, 'cross_instance_deliveries': cross.count,
        'delivered_per_second': round(received / duration, 1),
        'delivered_per_second_incl_drain': round(received / window, 1) if window else None,
        'latency_ms': {'all': overall.summary(), 'same_instance': same.summary(),
                       'cross_instance': cross.summary()},
        'latency_cdf': {label: [[round(x * 1000, 3), round(y, 5)]
                                for x, y in h.cdf()[::max(1, len(h.counts) // 400)]]
                        for label, h in (('same-instance', same), ('cross-instance', cross))},
        'ack_latency_ms': ack.summary(),
        'protocol_errors': sum(t['protocol_errors'] for t in tallies),
    }
