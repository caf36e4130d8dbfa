"""``stoq.helpers`` of the v3 API: JSON output, digests, StoqConfigParser
(defined in ``stoq.config``).

Written for this project from the behaviour described in the stoQ v3
specification (§1.13, §1.15, §3.2); no reference code is copied.
"""

import datetime
import hashlib
import json
import traceback

# StoqConfigParser lives in stoq.config; the reference exposes it here.
from .config import StoqConfigParser

__all__ = [
    'JsonComplexEncoder',
    'StoqConfigParser',
    'dumps',
    'format_exc',
    'get_md5',
    'get_sha1',
    'get_sha256',
    'get_sha512',
]


class JsonComplexEncoder(json.JSONEncoder):
    """The reference's fallbacks for values json cannot encode natively."""

    def default(self, o):
        if isinstance(o, bytes):
            # The reference guesses the charset with bs4's UnicodeDammit, whose
            # answer depends on what is installed. Here: UTF-8, invalid
            # sequences replaced by U+FFFD. Same result for UTF-8/ASCII text.
            return o.decode('utf-8', errors='replace')
        if isinstance(o, datetime.datetime):
            return str(o)
        if isinstance(o, set):
            return list(o)
        try:
            # Any other object is serialised as its attributes, in the order
            # they were assigned: this is what gives the data classes their
            # JSON shape.
            return vars(o)
        except TypeError:
            pass
        return super().default(o)


def dumps(data, indent=4, compactly=False):
    """JSON text of ``data``: pretty (``indent`` spaces) unless ``compactly``
    is True or ``indent`` is falsy, then one line with Python's default
    ``", "``/``": "`` separators. Non-ASCII text is kept as is."""
    if compactly is True or not indent:
        indent = None
    return json.dumps(data, indent=indent, cls=JsonComplexEncoder, ensure_ascii=False)


def get_md5(content):
    return hashlib.md5(content).hexdigest()


def get_sha1(content):
    return hashlib.sha1(content).hexdigest()


def get_sha256(content):
    return hashlib.sha256(content).hexdigest()


def get_sha512(content):
    return hashlib.sha512(content).hexdigest()


def format_exc(exc, limit=-1, msg=None):
    """``[<msg>: ]<last traceback line> ; <Type>: <text>`` (spec §1.15)."""
    frames = traceback.format_tb(exc.__traceback__, limit=limit)
    tb = frames[-1].strip().splitlines()[0] if frames else ''
    stype = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ('builtins', '__main__'):
        stype = f'{module}.{stype}'
    text = f'{tb} ; {stype}: {exc}'
    return f'{msg}: {text}' if msg else text
