"""Mint a token for a cluster that runs AUTH_MODE=jwt with HS256: to try a
Swarm stack (which defaults to jwt, as production should), or for the test
suites. It signs with the secret the instances verify with (JWT_SECRET, or
the file JWT_SECRET_FILE names) and takes the audience, issuer and claim
names from the same settings, so the token is what the cluster expects.

    JWT_SECRET_FILE=compose/.generated/swarm/secrets/jwt_secret \\
        python -m socketio_kit.mint --sub alice --rooms 'lobby,team-*' [--roles admin] [--ttl 3600]

prints the token (`make swarm-token` does this for the Swarm stack). In
production, tokens come from your identity provider, not from this tool.
"""
import argparse
import os
import sys

from socketio_kit.config import ConfigError, load_settings
from socketio_kit.policy.auth import issue_token


def _names(text: str):
    return [name.strip() for name in text.split(',') if name.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m socketio_kit.mint',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--sub', default='someone', help='the subject claim (default: someone)')
    parser.add_argument('--rooms', default='*',
                        help="rooms the holder may join, comma-separated, `*` patterns "
                             "allowed (default: '*', every room)")
    parser.add_argument('--roles', default='', help='roles, comma-separated (admin opens /_kit)')
    parser.add_argument('--ttl', type=int, default=3600,
                        help='seconds until it expires (default: 3600)')
    args = parser.parse_args(argv)
    try:
        settings = load_settings({**os.environ, 'AUTH_MODE': 'jwt', 'DEMO_TOKENS': 'false'})
    except ConfigError as exc:
        print(f'mint: {exc}', file=sys.stderr)
        return 2
    security = settings.security
    if security.jwt_algorithm != 'HS256':
        print(f'mint: JWT_ALGORITHM={security.jwt_algorithm} tokens are signed with '
              'a private key this kit never holds; mint them where that key lives.',
              file=sys.stderr)
        return 2
    if not 1 <= args.ttl <= 30 * 86400:
        print(f'mint: --ttl {args.ttl} is outside 1..2592000 seconds.', file=sys.stderr)
        return 2
    print(issue_token(security, security.jwt_key, args.sub, _names(args.rooms),
                      _names(args.roles), args.ttl))
    return 0


if __name__ == '__main__':
    sys.exit(main())
