#!/usr/bin/env python3

#   Licensed under the Apache License, Version 2.0 (the "License");
#   you may not use this file except in compliance with the License.
#   You may obtain a copy of the License at
#
#       http://www.apache.org/licenses/LICENSE-2.0
#
#   Unless required by applicable law or agreed to in writing, software
#   distributed under the License is distributed on an "AS IS" BASIS,
#   WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
#   See the License for the specific language governing permissions and
#   limitations under the License.
#
#   Written for the stoq-rs test suite in the style of the stoQ v3 public
#   plugins; not derived from their code.

"""
Overview
========

Test archiver: keeps each payload in a directory under its SHA-256 and
gives it back from the task a provider hands over.

Options
=======

archive_dir [str]: Directory the payloads are written to (required)
"""

import os
from typing import Optional

from stoq import ArchiverResponse, Payload, PayloadMeta, Request
from stoq.exceptions import StoqPluginException
from stoq.helpers import StoqConfigParser, get_sha256
from stoq.plugins import ArchiverPlugin


class V3Archiver(ArchiverPlugin):
    def __init__(self, config: StoqConfigParser) -> None:
        super().__init__(config)

        self.archive_dir = config.get('options', 'archive_dir', fallback='')
        if not self.archive_dir:
            raise StoqPluginException('archive_dir has not been defined')

    async def archive(self, payload: Payload, request: Request) -> Optional[ArchiverResponse]:
        sha256 = get_sha256(payload.content)
        os.makedirs(self.archive_dir, exist_ok=True)
        path = os.path.join(self.archive_dir, sha256)
        with open(path, 'wb') as f:
            f.write(payload.content)
        return ArchiverResponse({'path': path, 'sha256': sha256})

    async def get(self, task: ArchiverResponse) -> Optional[Payload]:
        with open(task.results['path'], 'rb') as f:
            content = f.read()
        return Payload(content, PayloadMeta(extra_data=task.results))
