"""`python -m native.logpipe FILE MAX_BYTES FILES`: native mode's log rotation.

Each native process writes its output into a pipe read by this small
process, which appends it to FILE and, once FILE passes MAX_BYTES, renames
FILE to FILE.1 (FILE.1 to FILE.2, ..., keeping FILES files in all) and
starts a new one: the same LOG_MAX_SIZE / LOG_MAX_FILE that compose gives
Docker's json-file driver. It ends when the last writer closes the pipe.
"""
import sys
from pathlib import Path


def rotate(path: Path, files: int):
    for index in range(files - 1, 0, -1):
        older = path.with_name(f'{path.name}.{index}')
        if index == files - 1:
            older.unlink(missing_ok=True)
        source = path if index == 1 else path.with_name(
            f'{path.name}.{index - 1}')
        if source.exists():
            source.rename(older)
    if files == 1:
        path.unlink(missing_ok=True)


def main(argv=None) -> int:
    name, max_bytes, files = (argv or sys.argv[1:])[:3]
    path, max_bytes, files = Path(name), int(max_bytes), int(files)
    stdin = sys.stdin.buffer.raw
    out = open(path, 'ab')
    size = out.tell()
    while True:
        chunk = stdin.read(65536)
        if not chunk:
            break
        out.write(chunk)
        out.flush()
        size += len(chunk)
        if size >= max_bytes:
            out.close()
            rotate(path, files)
            out, size = open(path, 'ab'), 0
    out.close()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
