"""Read a .env file the way docker compose does, for the Makefile and
compose/run-compose, so both see the same values.

    python3 scripts/dotenv.py .env --make     NAME ?= value / export NAME
    python3 scripts/dotenv.py .env --shell    export lines for eval; a
                                              variable already set wins
    python3 scripts/dotenv.py F --shell --override   the file wins

Lines are NAME=value; blank lines and # comments are skipped; one pair of
surrounding quotes (" or ') is dropped, and everything else is kept as it is,
quotes, $ and # inside the value included. Standard library only: it runs
before the virtualenv exists.
"""
import argparse
import re
import shlex
import sys
from pathlib import Path
from typing import Dict

NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')


def parse(text: str) -> Dict[str, str]:
    values = {}
    for raw in text.splitlines():
        line = raw.lstrip()
        if not line or line.startswith('#') or '=' not in line:
            continue
        name, value = line.split('=', 1)
        if not NAME.match(name):
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in '"\'':
            value = value[1:-1]
        values[name] = value
    return values


def as_make(values: Dict[str, str]) -> str:
    """`?=` lines: the command line and the environment still win."""
    lines = []
    for name, value in values.items():
        escaped = value.replace('$', '$$').replace('#', '\\#')
        lines += [f'{name} ?= {escaped}', f'export {name}']
    return ''.join(line + '\n' for line in lines)


def as_shell(values: Dict[str, str], override: bool) -> str:
    lines = []
    for name, value in values.items():
        export = f'export {name}={shlex.quote(value)}'
        lines.append(export if override else f'[ -n "${{{name}+set}}" ] || {export}')
    return ''.join(line + '\n' for line in lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('file', type=Path)
    form = parser.add_mutually_exclusive_group(required=True)
    form.add_argument('--make', action='store_true')
    form.add_argument('--shell', action='store_true')
    parser.add_argument('--override', action='store_true',
                        help='with --shell: the file wins over the environment')
    args = parser.parse_args(argv)
    values = parse(args.file.read_text())
    sys.stdout.write(as_make(values) if args.make
                     else as_shell(values, args.override))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
