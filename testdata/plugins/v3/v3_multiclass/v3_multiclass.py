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

Test plugin that is a worker and a dispatcher in one class, in the style of
the v3 ``multiclass_plugin``.

Options
=======

workers [list]: Workers to dispatch to (default: v3_multiclass)
rule_count [int]: How many pretend rule hits per worker (default: 1)
"""

from typing import Optional

from stoq import DispatcherResponse, ExtractedPayload, Payload, Request, WorkerResponse
from stoq.helpers import StoqConfigParser
from stoq.plugins import DispatcherPlugin, WorkerPlugin


class V3MultiClass(WorkerPlugin, DispatcherPlugin):
    def __init__(self, config: StoqConfigParser) -> None:
        super().__init__(config)

        self.workers = config.getlist('options', 'workers', fallback=['v3_multiclass'])
        self.rule_count = config.getint('options', 'rule_count', fallback=1)

    async def scan(self, payload: Payload, request: Request) -> Optional[WorkerResponse]:
        extracted = []
        if payload.content != b'Lorem ipsum':
            extracted.append(ExtractedPayload(b'Lorem ipsum'))
        return WorkerResponse({'valuable_insight': 'wow'}, extracted=extracted)

    async def get_dispatches(self, payload: Payload, request: Request) -> Optional[DispatcherResponse]:
        response = DispatcherResponse()
        for worker in self.workers:
            for count in range(self.rule_count):
                response.plugin_names.append(worker)
                response.meta[worker] = {f'rule{count}': worker}
        return response
