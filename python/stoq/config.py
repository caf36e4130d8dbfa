"""``StoqConfigParser``, the configuration object of the v3 API (spec
§3.2), re-exported by ``stoq.helpers`` where the reference defines it.

Written for this project from the behaviour described in the stoQ v3
specification; no reference code is copied.
"""

import configparser
import json

__all__ = ['StoqConfigParser']


class StoqConfigParser(configparser.ConfigParser):
    """``configparser.ConfigParser`` (``=``/``:``, full-line comments, option
    names lower-cased, BasicInterpolation) plus the reference's helpers."""

    def getlist(self, section, option, fallback='', **kwargs):
        value = self.get(section, option, fallback=fallback, **kwargs)
        if not isinstance(value, str):
            # already a list (typically the fallback) -- returned as is
            return value
        # Quirk kept from the reference: the emptiness test is made on the
        # piece *before* stripping, so "a, " gives ['a', ''].
        return [s.strip() for s in value.split(',') if s]

    def getset(self, section, option, fallback='', **kwargs):
        value = self.getlist(section, option, fallback=fallback, **kwargs)
        return set(value) if value is not None else value

    def getjson(self, section, option, fallback={}, **kwargs):  # noqa: B006 (reference signature)
        value = self.get(section, option, fallback=fallback, **kwargs)
        if isinstance(value, (dict, list)):
            return value
        return json.loads(value)  # invalid JSON raises json.JSONDecodeError
