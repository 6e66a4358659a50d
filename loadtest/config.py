"""The run's settings: one dataclass whose fields also define the CLI.

Each field is written once, with its default and, in its metadata, its help
text and flags; `add_options` turns the fields into argparse options and
`from_args` back into a Config. The worker processes receive this same object.
"""
import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Optional

SCENARIOS = ('broadcast', 'reconnect', 'redis-outage', 'rolling-restart', 'ramp',
             'slow-consumer', 'selftest')
TRANSPORTS = ('websocket', 'polling', 'upgrade')


def opt(default, help, *flags, **argparse_kwargs):
    """A Config field that is also a command-line option."""
    return field(default=default, metadata={'help': help, 'flags': flags, **argparse_kwargs})


@dataclass
class Config:
    scenario: str = field(default='broadcast', metadata={
        'help': 'what to run', 'positional': True, 'choices': SCENARIOS})
    url: str = opt('http://127.0.0.1:8080', 'balancer URL')
    path: str = opt('/socket.io', 'Socket.IO path')
    origin: Optional[str] = opt('http://localhost:8081', 'Origin header (must be in '
                                'CORS_ALLOWED_ORIGINS); "" sends none')
    transport: str = opt('websocket', 'websocket: direct; polling: long-polling only; '
                         'upgrade: polling then upgrade, like a browser',
                         choices=TRANSPORTS)
    compression: str = opt('on', 'on: offer permessage-deflate in the WebSocket '
                           'handshake, as Chrome and socket.io-client do; off: do not',
                           choices=('on', 'off'))
    clients: int = opt(50, 'clients in the room (ramp: clients held)', '-c')
    senders: int = opt(5, 'clients that broadcast', '-s')
    rate: float = opt(20.0, 'broadcasts per second, all senders together', '-r')
    duration: float = opt(10.0, 'seconds of sending', '-d')
    drain: float = opt(3.0, 'seconds to wait for deliveries after sending stops')
    room: str = opt('loadtest', 'room the clients join')
    procs: int = opt(1, 'generator processes to spread the clients over', '-p')
    latency_every: int = opt(4, 'parse the send time (latency) on every k-th client '
                             'only; every client counts delivery, duplicates and order')
    connect_rate: float = opt(500.0, 'new connections per second, all processes together')
    connect_concurrency: int = opt(200, 'connection attempts in flight per process')
    connect_timeout: float = opt(10.0, 'seconds for one connection attempt')
    ack_timeout: float = opt(10.0, 'seconds a sender waits for the ack of a broadcast')
    reconnect_delay: float = opt(0.5, 'reconnect: first retry delay (s), doubled per '
                                 'attempt, jittered 50-100%%')
    reconnect_delay_max: float = opt(2.0, 'reconnect: longest retry delay (s)')
    kill_via: str = opt('auto', 'how to reach instances (kill, restore, RSS)',
                        choices=('auto', 'native', 'docker', 'none'))
    kill_mode: str = opt('kill', 'kill: SIGKILL / docker kill; stop: SIGTERM / docker stop',
                         choices=('kill', 'stop'))
    kill_after: float = opt(3.0, 'seconds into the broadcast to kill the instance')
    victim: Optional[str] = opt(None, 'instance to kill (default: fewest senders, '
                                'most clients)')
    deadline: float = opt(30.0, 'seconds a client may take to be back and receiving')
    restore: bool = opt(True, 'leave the killed instance down', '--no-restore')
    probe_clients: int = opt(12, 'reconnect: fresh clients that check the restored instance')
    outage_s: float = opt(5.0, 'redis-outage: seconds Redis stays stopped')
    recover: bool = opt(True, 'reconnect without {pid, offset} (no connection-state '
                        'recovery, like a client that does not speak it)', '--no-recover')
    hold: float = opt(5.0, 'ramp: seconds to hold the clients before reading RSS')
    rss_every: float = opt(1.0, 'slow-consumer: seconds between RSS readings')
    min_rate: float = opt(150_000.0, 'selftest: messages per second of CPU one generator '
                          'process must take, or the selftest fails')
    max_cpu: float = opt(0.85, 'generator CPU (fraction of a core per process) above '
                         'which the result is invalid')
    max_lag_ms: float = opt(50.0, 'generator event-loop lag (p99, ms) above which the '
                            'result is invalid')
    run_dir: Optional[str] = opt(None, 'native cluster run directory (default .run/local)')
    project: str = opt('socketio-kit', 'compose project name')
    out: Optional[str] = opt(None, 'result JSON (default results/SCENARIO-TIME.json)')
    plots: bool = opt(True, 'write no PNG plots', '--no-plots')
    quiet: bool = opt(False, 'no progress bar', '-q')
    command: str = ''   # the command line, set by the CLI for the result

    @property
    def offers_deflate(self) -> bool:
        return self.compression == 'on'


def add_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """One option per Config field that has help text."""
    for f in dataclasses.fields(Config):
        meta = dict(f.metadata)
        if 'help' not in meta:
            continue
        flags = meta.pop('flags', ())
        kwargs = {'help': meta.pop('help'), **meta}
        if kwargs.pop('positional', False):
            parser.add_argument(f.name, **kwargs)
            continue
        long = '--' + f.name.replace('_', '-')
        if f.type in (bool, 'bool'):
            # A default of True is switched off by its flag (--no-restore).
            names = flags or (long,)
            parser.add_argument(*names, dest=f.name, default=f.default,
                                action='store_false' if f.default else 'store_true',
                                **kwargs)
            continue
        value_type = type(f.default) if f.default is not None else str
        parser.add_argument(*flags, long, dest=f.name, type=value_type,
                            default=f.default, **kwargs)
    return parser


def from_args(args: argparse.Namespace, command: str = '') -> Config:
    """A Config from parsed options, normalised and checked."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
              if hasattr(args, f.name)}
    cfg = Config(**values, command=command)
    if cfg.clients < 1 or cfg.procs < 1 or cfg.latency_every < 1:
        raise SystemExit('--clients, --procs and --latency-every must be at least 1')
    return dataclasses.replace(
        cfg, path=cfg.path.rstrip('/') or '/', origin=cfg.origin or None,
        senders=max(1, min(cfg.senders, cfg.clients)), procs=min(cfg.procs, cfg.clients))
