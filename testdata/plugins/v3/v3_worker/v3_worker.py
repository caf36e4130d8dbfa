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

Test worker in the style of the v3 ``simple_worker``: returns a little
insight, extracts one payload and can be told to return errors or to raise.

Options
=======

greeting [str]: Value of the ``greeting`` result (default: hello)
return_errors [bool]: Also return an error record
raise_exception [bool]: Raise instead of answering
"""

from typing import Optional

from stoq import Error, ExtractedPayload, Payload, PayloadMeta, Request, WorkerResponse
from stoq.helpers import StoqConfigParser
from stoq.plugins import WorkerPlugin


class V3Worker(WorkerPlugin):
    def __init__(self, config: StoqConfigParser) -> None:
        super().__init__(config)

        self.greeting = config.get('options', 'greeting', fallback='hello')
        self.return_errors = config.getboolean('options', 'return_errors', fallback=False)
        self.raise_exception = config.getboolean('options', 'raise_exception', fallback=False)

    async def scan(self, payload: Payload, request: Request) -> Optional[WorkerResponse]:
        if self.raise_exception:
            raise Exception('Test exception please ignore')

        extracted = []
        # Extract only from something else, so the extracted payload does
        # not extract itself again when it is scanned in turn.
        if payload.content != b'Lorem ipsum':
            extracted.append(
                ExtractedPayload(b'Lorem ipsum', PayloadMeta(extra_data={'filename': 'lorem.txt'}))
            )

        errors = []
        if self.return_errors:
            errors.append(
                Error(
                    plugin_name='v3_worker',
                    error='Test error please ignore',
                    payload_id=payload.results.payload_id,
                )
            )

        results = {'valuable_insight': 'wow', 'greeting': self.greeting}
        return WorkerResponse(results, extracted=extracted, errors=errors)
