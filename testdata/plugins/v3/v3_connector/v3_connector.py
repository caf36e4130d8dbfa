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

Test connector: appends each response as one line of compact JSON to a
file.

Options
=======

output_file [str]: File the results are appended to (required)
"""

from stoq import StoqResponse, helpers
from stoq.exceptions import StoqPluginException
from stoq.helpers import StoqConfigParser
from stoq.plugins import ConnectorPlugin


class V3Connector(ConnectorPlugin):
    def __init__(self, config: StoqConfigParser) -> None:
        super().__init__(config)

        self.output_file = config.get('options', 'output_file', fallback='')
        if not self.output_file:
            raise StoqPluginException('output_file has not been defined')

    async def save(self, response: StoqResponse) -> None:
        with open(self.output_file, 'a', encoding='utf-8') as f:
            f.write(helpers.dumps(response, compactly=True) + '\n')
