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

Test decorator: counts the payloads of a response and lists the workers
that ran on them.
"""

from typing import Optional

from stoq import DecoratorResponse, StoqResponse
from stoq.plugins import DecoratorPlugin


class V3Decorator(DecoratorPlugin):
    async def decorate(self, response: StoqResponse) -> Optional[DecoratorResponse]:
        workers_seen = set()
        for result in response.results:
            workers_seen.update(result.plugins_run['workers'])
        return DecoratorResponse(
            {'payload_count': len(response.results), 'workers_seen': sorted(workers_seen)}
        )
