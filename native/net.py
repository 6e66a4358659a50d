"""Loopback helpers of the native cluster, its tests and tools: free ports,
and a GET that answers (status, body) instead of raising."""
import json
import socket
import urllib.error
import urllib.request
from typing import List


def free_ports(count: int) -> List[int]:
    """Distinct free loopback ports (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(('127.0.0.1', 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def http_get(url: str, timeout: float = 2.0):
    """(status, parsed JSON or text) of a GET, or (None, error text)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read().decode(errors='replace'), exc.code
    except (OSError, ValueError) as exc:
        return None, str(exc)
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body
