"""Mergeable latency histograms and per-sender sequence tracking.

Results from several generator processes are merged, so nothing here keeps
raw samples: latencies go into log-spaced buckets (about 1% wide), which
merge by adding counts and give percentiles within 1%.
"""
import math
from typing import Dict, Iterable, List, Optional, Tuple

BUCKETS_PER_E = 100  # bucket width: a factor of e**(1/100), about 1%


class Histogram:
    """Latency histogram in seconds with ~1% relative precision."""

    __slots__ = ('counts', 'count', 'total', 'max', 'min')

    def __init__(self):
        self.counts: Dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.max = 0.0
        self.min = math.inf

    def add(self, seconds: float):
        if seconds < 1e-6:
            seconds = 1e-6
        key = int(math.log(seconds * 1e6) * BUCKETS_PER_E)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds
        if seconds < self.min:
            self.min = seconds

    def merge(self, other: 'Histogram') -> 'Histogram':
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)
        self.min = min(self.min, other.min)
        return self

    @staticmethod
    def _value(key: int) -> float:
        # The middle of the bucket, in seconds.
        return math.exp((key + 0.5) / BUCKETS_PER_E) / 1e6

    def percentile(self, pct: float) -> Optional[float]:
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * pct / 100.0))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return min(self._value(key), self.max)
        return self.max

    def cdf(self) -> List[Tuple[float, float]]:
        """(latency seconds, fraction at or below) points, for plotting."""
        out, seen = [], 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            out.append((min(self._value(key), self.max), seen / self.count))
        return out

    def summary(self, scale: float = 1000.0) -> dict:
        """count, mean, p50/p90/p99/max; times in milliseconds by default."""
        def r(v):
            return None if v is None else round(v * scale, 3)
        return {'count': self.count,
                'mean': r(self.total / self.count) if self.count else None,
                'p50': r(self.percentile(50)), 'p90': r(self.percentile(90)),
                'p99': r(self.percentile(99)), 'max': r(self.max) if self.count
                else None}

    def to_dict(self) -> dict:
        return {'counts': {str(k): v for k, v in self.counts.items()},
                'count': self.count, 'total': self.total, 'max': self.max,
                'min': self.min if self.count else None}

    @classmethod
    def from_dict(cls, data: dict) -> 'Histogram':
        h = cls()
        h.counts = {int(k): v for k, v in data['counts'].items()}
        h.count, h.total, h.max = data['count'], data['total'], data['max']
        h.min = data['min'] if data.get('min') is not None else math.inf
        return h

    @classmethod
    def merged(cls, parts: Iterable['Histogram']) -> 'Histogram':
        out = cls()
        for part in parts:
            out.merge(part)
        return out


def percentiles(values: List[float], scale: float = 1000.0) -> dict:
    """Exact percentiles of a small list (per-client reconnect times)."""
    if not values:
        return {'count': 0, 'p50': None, 'p90': None, 'p99': None, 'max': None}
    ordered = sorted(values)

    def pick(pct):
        return round(ordered[max(0, math.ceil(len(ordered) * pct / 100) - 1)]
                     * scale, 3)
    return {'count': len(ordered), 'p50': pick(50), 'p90': pick(90),
            'p99': pick(99), 'max': round(ordered[-1] * scale, 3)}


class SeqTracker:
    """What one receiver got from one sender, by sequence number.

    Messages normally arrive in order, so this keeps the highest sequence seen
    and only the gaps below it; a late arrival that fills a gap is counted as
    out of order, anything else at or below the highest is a duplicate.
    """

    __slots__ = ('high', 'gaps')

    def __init__(self):
        self.high = -1
        self.gaps: Optional[set] = None

    def add(self, seq: int) -> str:
        """'ok', 'late' (out of order) or 'dup'."""
        high = self.high
        if seq == high + 1:
            self.high = seq
            return 'ok'
        if seq > high:
            if self.gaps is None:
                self.gaps = set()
            self.gaps.update(range(high + 1, seq))
            self.high = seq
            return 'ok'
        if self.gaps and seq in self.gaps:
            self.gaps.discard(seq)
            return 'late'
        return 'dup'

    def received_of(self, sent: int, unacked: set) -> int:
        """How many of the sender's acked messages (0..sent-1 minus unacked)
        this receiver got."""
        top = min(self.high + 1, sent)
        if top <= 0:
            return 0
        got = top - sum(1 for s in unacked if s < top)
        if self.gaps:
            got -= sum(1 for s in self.gaps if s < top and s not in unacked)
        return got
