"""The benchmark's results: every run's JSON by name, plus what ran them."""
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple


def passes(result: dict, p99_limit_ms: float) -> bool:
    """A step passes when the run is valid, every message arrived, and p99 is
    under the limit."""
    d = result.get('delivery') or {}
    p99 = (d.get('latency_ms') or {}).get('all', {}).get('p99')
    return bool(result.get('valid') and d.get('delivery_ratio') == 1.0
                and p99 is not None and p99 < p99_limit_ms)


class Results:
    """Runs by name (`sweep-eventlet-6000`, `hold`, ...) and the bench's meta:
    its command, start time, options, and a note per cluster it ran against."""

    def __init__(self, meta: dict):
        self.meta = meta
        self.runs: Dict[str, dict] = {}     # name -> result, or {'error': ...}
        self.index: Dict[str, dict] = {}    # name -> section, label, out

    def add(self, name: str, section: str, label: str, result: Optional[dict],
            error: Optional[str] = None):
        self.runs[name] = result if result is not None else {'error': error}
        self.index[name] = {'section': section, 'label': label,
                            'out': result.get('out') if result else None, 'error': error}

    def named(self, section: str, label: Optional[str] = None) -> List[Tuple[str, dict]]:
        return [(n, self.runs[n]) for n, i in self.index.items()
                if i['section'] == section and (label is None or i['label'] == label)]

    def labels(self, section: str) -> List[str]:
        return list(dict.fromkeys(i['label'] for i in self.index.values()
                                  if i['section'] == section))

    def sweep(self, label: str) -> List[Tuple[float, dict, bool]]:
        """(delivered msg/s asked, result, passed) for each step run."""
        limit = self.meta['options']['p99_ms']
        return [(r['config']['rate'] * r['config']['clients'], r, passes(r, limit))
                for _, r in self.named('sweep', label) if 'error' not in r]

    def one(self, section: str) -> Optional[dict]:
        found = self.named(section)
        return found[0][1] if found else None

    def any_result(self) -> Optional[dict]:
        return next((r for r in self.runs.values() if 'error' not in r), None)

    def save(self, results_dir: Path):
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / 'summary.json').write_text(json.dumps(
            {'meta': self.meta, 'runs': self.index}, indent=1) + '\n')

    @classmethod
    def load(cls, results_dir: Path) -> 'Results':
        summary = json.loads((results_dir / 'summary.json').read_text())
        results = cls(summary['meta'])
        for name, info in summary['runs'].items():
            result = json.loads(Path(info['out']).read_text()) if info.get('out') else None
            results.add(name, info['section'], info['label'], result, info.get('error'))
        return results
