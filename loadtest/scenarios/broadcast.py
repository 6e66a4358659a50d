"""broadcast: every client joins one room; the senders broadcast to it at a
fixed rate; delivery, duplicates, order and latency are measured."""
from loadtest import merge
from loadtest.run import Run

NEEDS_CONTROLLER = False


def run(r: Run):
    replies = r.connect(join=True)
    _, tallies = r.send(replies)
    r.result['clients_per_instance_end'] = merge.merge_counts(t['landed_now'] for t in tallies)
