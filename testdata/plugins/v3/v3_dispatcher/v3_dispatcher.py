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

Test dispatcher in the style of the v3 ``simple_dispatcher``: sends every
payload to the configured workers, adds dispatch metadata and marks the
payload as not to be archived (by changing the payload in place, as v3
plugins do).

Options
=======

workers [list]: Workers to dispatch to (default: v3_worker)
"""

from typing import Optional

from stoq import DispatcherResponse, Payload, Request
from stoq.helpers import StoqConfigParser
from stoq.plugins import DispatcherPlugin


class V3Dispatcher(DispatcherPlugin):
    def __init__(self, config: StoqConfigParser) -> None:
        super().__init__(config)

        self.workers = config.getlist('options', 'workers', fallback=['v3_worker'])

    async def get_dispatches(self, payload: Payload, request: Request) -> Optional[DispatcherResponse]:
        payload.results.payload_meta.should_archive = False
        return DispatcherResponse(plugin_names=self.workers, meta={'test_key': 'Useful metadata info'})
