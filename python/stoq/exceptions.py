"""Exceptions of the stoQ v3 API (spec §0): all three derive directly from
``Exception``, not from each other, as in the reference."""


class StoqException(Exception):
    pass


class StoqPluginException(Exception):
    pass


class StoqPluginNotFound(Exception):
    pass
