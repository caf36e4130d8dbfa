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

Hash content: the documented behaviour of the public ``hash`` plugin,
written as a v3 plugin. The keys are in the order of stoq's built-in
``hash`` worker (sha256, md5, sha1, sha512), so both give the same shape.
"""

from typing import Optional

from stoq import Payload, Request, WorkerResponse
from stoq.helpers import get_md5, get_sha1, get_sha256, get_sha512
from stoq.plugins import WorkerPlugin


class HashPlugin(WorkerPlugin):
    async def scan(self, payload: Payload, request: Request) -> Optional[WorkerResponse]:
        results = {
            'sha256': get_sha256(payload.content),
            'md5': get_md5(payload.content),
            'sha1': get_sha1(payload.content),
            'sha512': get_sha512(payload.content),
        }
        return WorkerResponse(results)
