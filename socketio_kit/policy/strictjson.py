"""Strict JSON for Socket.IO packets: what every client can parse.

The standard `json` module reads and writes `NaN`, `Infinity` and numbers
like `1e999999` (as inf), none of which is JSON: socket.io-client then drops
its connection with "parse error", so one client's broadcast would disconnect
a whole room. Here they are refused on input (the packet is a parse error,
socketio_kit/policy/guard.py) and can never be written. Integers must fit in a JavaScript
number exactly (|n| <= 2**53 - 1), or the receivers would see another value;
arrays and objects nest at most MAX_DEPTH deep.
"""
import json
import math

MAX_SAFE_INTEGER = 2 ** 53 - 1
# Far above any real payload; keeps int() off pathological digit strings.
MAX_NUMBER_LENGTH = 400
# Far above any real payload too: a message nested a few hundred levels
# deep parses, but re-encoding it for the room can exceed Python's recursion
# limit on the sender's instance after it went to the other instances, so
# its own members would miss it.
MAX_DEPTH = 128

JSONDecodeError = json.JSONDecodeError


class StrictJSONError(ValueError):
    """A JSON text that is not strict JSON."""


def _constant(name):
    raise StrictJSONError(f'{name} is not JSON')


def _float(text):
    if len(text) > MAX_NUMBER_LENGTH:
        raise StrictJSONError('number too long')
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError(f'number {text[:20]} does not fit in a double')
    return value


def _int(text):
    if len(text) > 17:  # 2**53 has 16 digits: only long ones need a look
        raise StrictJSONError(f'integer {text[:20]}... does not fit in a '
                              f'JavaScript number')
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise StrictJSONError(f'integer {text} does not fit in a JavaScript '
                              f'number')
    return value


_decoder = json.JSONDecoder(parse_constant=_constant, parse_float=_float,
                            parse_int=_int)


def _deeper_than(value, limit: int) -> bool:
    """Whether arrays and objects nest deeper than limit (no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def loads(text, **kwargs):
    """Parse strict JSON; raises ValueError (StrictJSONError) otherwise."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode('utf-8')
    value = _decoder.decode(text)
    # Only a text with that many brackets can nest that deep: counting them
    # runs at C speed, the walk only then.
    if isinstance(value, (dict, list)) and \
            text.count('[') + text.count('{') > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise StrictJSONError(f'arrays and objects nested deeper than {MAX_DEPTH}')
    return value


def dumps(obj, **kwargs):
    """Serialize; NaN and infinities raise ValueError instead of being
    written."""
    kwargs['allow_nan'] = False
    return json.dumps(obj, **kwargs)
