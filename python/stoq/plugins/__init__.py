"""Plugin base classes of the stoQ v3 API (spec §3.3, §3.6).

A plugin is constructed with exactly one argument, its merged configuration
(a ``StoqConfigParser`` holding ``[Core]``, ``[Documentation]`` and
``[options]``). Methods are ``async``.
"""

import logging
import sys
from abc import ABC, abstractmethod

__all__ = [
    'ArchiverPlugin',
    'BasePlugin',
    'ConnectorPlugin',
    'DecoratorPlugin',
    'DispatcherPlugin',
    'ProviderPlugin',
    'WorkerPlugin',
]


class BasePlugin(ABC):
    def __init__(self, config):
        self.config = config
        self.plugin_name = config.get('Core', 'Name', fallback=self.__class__.__name__)
        self.__author__ = config.get('Documentation', 'Author', fallback='')
        self.__version__ = config.get('Documentation', 'Version', fallback='')
        self.__website__ = config.get('Documentation', 'Website', fallback='')
        self.__description__ = config.get('Documentation', 'Description', fallback='')
        self.log = logging.getLogger(f'stoq.{self.plugin_name}')


class WorkerPlugin(BasePlugin):
    def __init__(self, config):
        super().__init__(config)
        self.required_workers = config.getset('options', 'required_workers', fallback=set())

    @abstractmethod
    async def scan(self, payload, request):
        pass


class DispatcherPlugin(BasePlugin):
    @abstractmethod
    async def get_dispatches(self, payload, request):
        pass


class ArchiverPlugin(BasePlugin):
    # Neither method is abstract in the reference; both default to None.
    async def archive(self, payload, request):
        return None

    async def get(self, task):
        return None


class ConnectorPlugin(BasePlugin):
    @abstractmethod
    async def save(self, response):
        pass


class DecoratorPlugin(BasePlugin):
    @abstractmethod
    async def decorate(self, response):
        pass


class ProviderPlugin(BasePlugin):
    @abstractmethod
    async def ingest(self, queue):
        pass


# The reference keeps each class in its own module (stoq/plugins/base.py,
# worker.py, ...). Plugins that import from those modules directly
# (``from stoq.plugins.base import BasePlugin``) find this package under the
# old names.
for _name in ('base', 'worker', 'dispatcher', 'archiver', 'connector', 'decorator', 'provider'):
    sys.modules.setdefault(f'{__name__}.{_name}', sys.modules[__name__])
    globals()[_name] = sys.modules[__name__]
del _name
