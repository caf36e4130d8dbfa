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

Test worker for time limits: never answers (sleeps for an hour) when the
content starts with ``hang``.
"""

import asyncio
from typing import Optional

from stoq import Payload, Request, WorkerResponse
from stoq.plugins import WorkerPlugin


class V3Hang(WorkerPlugin):
    async def scan(self, payload: Payload, request: Request) -> Optional[WorkerResponse]:
        if payload.content.startswith(b'hang'):
            await asyncio.sleep(3600)
        return WorkerResponse({'ok': True})
