"""The native cluster's redis-server: never without a password.

A random password is generated on first start and kept in RUN_DIR/redis.pass
(mode 0600), so instances started later (`make local-start`) find it. It
reaches redis-server through a config file of the same mode, never the
command line (which every local user can read in `ps`). Pub/sub output-buffer
limits are set deliberately: far above one adapter message (capped by
ADAPTER_MAX_MESSAGE_BYTES), so Redis drops a subscriber only when an instance
has stopped reading for a long time.
"""
import os
import secrets
import socket
from pathlib import Path
from urllib.parse import quote

# hard limit, soft limit, seconds over the soft limit (redis.conf syntax).
PUBSUB_OUTPUT_BUFFER = '256mb 64mb 60'


def password(run_dir: Path) -> str:
    """The cluster's Redis password, generated once per run directory."""
    path = Path(run_dir) / 'redis.pass'
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, 'w') as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def url(run_dir: Path, port: int) -> str:
    return f'redis://:{quote(password(run_dir), safe="")}@127.0.0.1:{port}/0'


def write_private(path: Path, text: str):
    """Write a file only its owner can read (it holds the password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as out:
        out.write(text)


def write_config(run_dir: Path, port: int) -> Path:
    """redis.conf for the native cluster: loopback, password, and an
    append-only file (fsync every second) for the stream and the sessions."""
    conf = Path(run_dir) / 'redis.conf'
    text = '\n'.join((
        f'port {port}', 'bind 127.0.0.1', 'protected-mode yes',
        f'requirepass {password(run_dir)}', 'save ""', 'appendonly yes',
        'appendfsync everysec',
        f'dir {run_dir}',
        f'client-output-buffer-limit pubsub {PUBSUB_OUTPUT_BUFFER}', ''))
    write_private(conf, text)
    return conf


def answers(port: int, secret: str) -> bool:
    """True once redis-server on port accepts the password and answers PING."""
    try:
        with socket.create_connection(('127.0.0.1', port), 0.5) as sock:
            pw = secret.encode()
            sock.sendall(b'*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\nPING\r\n'
                         % (len(pw), pw))
            reply = b''
            for _ in range(4):
                reply += sock.recv(64)
                if b'PONG' in reply or reply.startswith(b'-'):
                    break
            return reply.startswith(b'+OK') and b'+PONG' in reply
    except OSError:
        return False
