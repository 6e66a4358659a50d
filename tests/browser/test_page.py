"""The demo page in a real headless Chromium, against a real native cluster.

The page is served by the cluster's nginx on its own port (PAGE_ROOT), so the
browser connects cross-origin with credentials. The allowed origin is
http://localhost:PAGE; the same page opened as http://127.0.0.1:PAGE is a
different origin that the cluster does not allow.

Needs `apt-get install chromium` and `make page-deps` (page/node_modules);
skipped with the reason when one is missing, failed instead when
BROWSER_REQUIRED=1 (make test-browser). The screenshots go to
$BROWSER_ARTIFACTS (default artifacts/browser/).
"""
import contextlib
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support import Client, free_port, local_cluster

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / 'page'
DRIVER = Path(__file__).with_name('driver.mjs')
CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
ARTIFACTS = Path(os.environ.get('BROWSER_ARTIFACTS', ROOT / 'artifacts' / 'browser'))
ROOM = 'lobby'
BROWSER_TEXT = 'hello from the browser'

MISSING = [what for what, there in (
    (f'{CHROMIUM} (apt-get install chromium)', Path(CHROMIUM).exists()),
    ('node', shutil.which('node') is not None),
    ('page/node_modules (make page-deps)',
     (PAGE / 'node_modules' / 'playwright-core').is_dir() and
     (PAGE / 'node_modules' / 'socket.io-client').is_dir()))
    if not there]


@pytest.fixture(autouse=True)
def browser_available():
    """Skip without a browser, except under `make test-browser`
    (BROWSER_REQUIRED=1), where a missing browser is a failure."""
    if MISSING:
        message = 'missing: ' + ', '.join(MISSING)
        if os.environ.get('BROWSER_REQUIRED') == '1':
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def page_cluster(run_dir: Path, instances: int = 3):
    """A native cluster whose nginx also serves page/ on its own port; only
    http://localhost:PAGE_PORT is an allowed origin."""
    page_port = free_port()
    with local_cluster(run_dir, instances, {
            'PAGE_PORT': str(page_port), 'PAGE_ROOT': str(PAGE),
            'CORS_ALLOWED_ORIGINS': f'http://localhost:{page_port}'}) as local:
        yield local, local.settings.http_port, page_port


class Broadcaster:
    """Python clients on every instance; each says "python from appN" in the
    room every 0.3 s until stopped (at most 90 s), so the page sees a message
    from an instance other than its own whichever one it lands on."""

    def __init__(self, url: str, origin: str, instances: int):
        self.clients = []
        self.stop_event = threading.Event()
        deadline = time.monotonic() + 20
        seen = set()
        while len(seen) < instances and time.monotonic() < deadline and \
                len(self.clients) < 6 * instances:
            client = Client(url, origin=origin).connect()
            if client.instance in seen:
                client.close()
                continue
            seen.add(client.instance)
            assert client.call('join', {'room': ROOM})['ok']
            self.clients.append(client)
        assert len(seen) == instances, f'python clients reached only {seen}'
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        for _ in range(300):
            if self.stop_event.wait(0.3):
                return
            for c in self.clients:
                with contextlib.suppress(Exception):
                    c.sio.emit('broadcast', {'room': ROOM,
                                             'data': f'python from {c.instance}'})

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join(5)
        for c in self.clients:
            c.close()

    def received(self, text: str, timeout: float = 10.0):
        """{instance of the receiving client: [sender instances of text]},
        once every client has received text (or at the deadline)."""
        deadline = time.monotonic() + timeout
        out = {}
        for client in self.clients:
            got = []
            while not got and time.monotonic() < deadline:
                with contextlib.suppress(queue.Empty):
                    message = client.messages.get(
                        timeout=max(0.01, deadline - time.monotonic()))
                    if message.get('data') == text:
                        got.append(message['from'])
            while not client.messages.empty():  # duplicates already queued
                message = client.messages.get_nowait()
                if message.get('data') == text:
                    got.append(message['from'])
            out[client.instance] = got
        return out


def run_driver(config: dict, timeout: float = 120) -> dict:
    proc = subprocess.run(['node', str(DRIVER), json.dumps(config)],
                          capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = [row for row in proc.stdout.splitlines() if row.startswith('{')]
    assert lines, f'no JSON from the driver:\n{proc.stdout}\n{proc.stderr}'
    return json.loads(lines[-1])


def test_page_in_chromium(tmp_path):
    with page_cluster(tmp_path / 'cluster') as (local, http_port, page_port):
        server = f'http://localhost:{http_port}'
        allowed = f'http://localhost:{page_port}/?server={server}&room={ROOM}'
        denied = f'http://127.0.0.1:{page_port}/?server={server}&room={ROOM}'
        with Broadcaster(local.url, f'http://localhost:{page_port}', 3) as py:
            result = run_driver({'allowedUrl': allowed, 'deniedUrl': denied,
                                 'artifacts': str(ARTIFACTS),
                                 'chromium': CHROMIUM,
                                 'browserText': BROWSER_TEXT})
            heard = py.received(BROWSER_TEXT)
        (ARTIFACTS / 'result.json').write_text(json.dumps(result, indent=2))

    assert 'failure' not in result, result
    page = result['allowed']
    assert page['ok'], page
    # Connected, upgraded, and shows where it landed.
    assert page['status'] == 'connected'
    assert page['transport'] == 'websocket'
    assert page['instance'] in local.app_ports
    # A broadcast from a Python client on another instance reached the page.
    others = {m['from'] for m in page['messages']
              if str(m['data']).startswith('python')} - {page['instance']}
    assert others, page['messages']
    # The page's own broadcast reached Python clients on every instance.
    assert all(senders == [page['instance']] for senders in heard.values()), heard
    # Credentials: the cookie /_kit/session set is what the server read on the
    # handshake and echoed in welcome.
    assert page['cookieSet'] and page['session'] == page['cookieSet'], page
    assert Path(page['screenshot']).stat().st_size > 5000

    refused = result['denied']
    assert refused['ok'], refused
    assert refused['status'] == 'error'
    assert refused['instance'] is None
    assert 'connect_error' in refused['errorText']
