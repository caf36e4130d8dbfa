#!/usr/bin/env python3
#   Licensed under the Apache License, Version 2.0. Written for stoq-rs.
"""Regenerates v3_needs_pkg/wheels/stoqtestpkg-0.1-py3-none-any.whl, the
tiny local package the v3_needs_pkg test plugin imports from its own
virtual environment. Standard library only; the output is byte-for-byte
reproducible (fixed timestamps and permissions).

    python3 testdata/plugins/v3/make_wheel.py
"""

import base64
import hashlib
import os
import zipfile

NAME, VERSION = 'stoqtestpkg', '0.1'
DIST_INFO = f'{NAME}-{VERSION}.dist-info'
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, 'v3_needs_pkg', 'wheels', f'{NAME}-{VERSION}-py3-none-any.whl')

FILES = [
    (f'{NAME}/__init__.py', "VALUE = 'from the venv'\n"),
    (
        f'{DIST_INFO}/METADATA',
        f'Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n'
        'Summary: Test package for the stoq-rs v3_needs_pkg plugin\nLicense: Apache-2.0\n',
    ),
    (
        f'{DIST_INFO}/WHEEL',
        'Wheel-Version: 1.0\nGenerator: make_wheel.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
    ),
]


def record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
    return f'{path},sha256={digest},{len(data)}\n'


def write(zf, path, data):
    info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    record = ''
    with zipfile.ZipFile(OUT, 'w') as zf:
        for path, text in FILES:
            data = text.encode()
            write(zf, path, data)
            record += record_line(path, data)
        record += f'{DIST_INFO}/RECORD,,\n'
        write(zf, f'{DIST_INFO}/RECORD', record.encode())
    print(OUT)


if __name__ == '__main__':
    main()
