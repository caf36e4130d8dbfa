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

Test provider: puts every file of a directory on the queue, in name order,
either as payloads or as tasks for the ``v3_archiver`` archiver.

Options
=======

source_dir [str]: Directory whose files are provided (required)
as_tasks [bool]: Put ``{'v3_archiver': {'path': ...}}`` tasks instead of payloads
"""

import os
from asyncio import Queue

from stoq import Payload, PayloadMeta
from stoq.exceptions import StoqPluginException
from stoq.helpers import StoqConfigParser
from stoq.plugins import ProviderPlugin


class V3Provider(ProviderPlugin):
    def __init__(self, config: StoqConfigParser) -> None:
        super().__init__(config)

        self.source_dir = config.get('options', 'source_dir', fallback='')
        if not self.source_dir:
            raise StoqPluginException('source_dir has not been defined')
        self.as_tasks = config.getboolean('options', 'as_tasks', fallback=False)

    async def ingest(self, queue: Queue) -> None:
        for name in sorted(os.listdir(self.source_dir)):
            path = os.path.join(self.source_dir, name)
            if not os.path.isfile(path):
                continue
            if self.as_tasks:
                await queue.put({'v3_archiver': {'path': path}})
            else:
                with open(path, 'rb') as f:
                    content = f.read()
                await queue.put(Payload(content, PayloadMeta(extra_data={'filename': name})))
