#!/usr/bin/env python3
#   Licensed under the Apache License, Version 2.0. Written for stoq-rs.
"""wordcount: a stoq worker written with the Python SDK (stoq_plugin).

Counts like ``wc``: words are runs of non-whitespace bytes, lines are
newline characters, bytes are the payload's size.
"""

import stoq_plugin


class WordCount(stoq_plugin.Plugin):
    def scan(self, payload, request):
        data = payload['content']  # bytes: the SDK has resolved the blob
        return {
            'results': {
                'words': len(data.split()),
                'lines': data.count(b'\n'),
                'bytes': len(data),
            }
        }


if __name__ == '__main__':
    stoq_plugin.run(WordCount)
