"""The stoQ v3 Python API, as seen by plugins run in the stoq (Rust)
compatibility host. Only what plugins import is provided: the data classes,
the plugin base classes (``stoq.plugins``), ``stoq.helpers`` and
``stoq.exceptions``. The scanning engine itself (``stoq.Stoq``) is the Rust
program and is not available from Python."""

from .data_classes import (
    ArchiverResponse,
    DecoratorResponse,
    DispatcherResponse,
    Error,
    ExtractedPayload,
    Payload,
    PayloadMeta,
    PayloadResults,
    Request,
    RequestMeta,
    StoqResponse,
    WorkerResponse,
)
from .exceptions import StoqException, StoqPluginException, StoqPluginNotFound

__version__ = '3.0.1'

__all__ = [
    'ArchiverResponse',
    'DecoratorResponse',
    'DispatcherResponse',
    'Error',
    'ExtractedPayload',
    'Payload',
    'PayloadMeta',
    'PayloadResults',
    'Request',
    'RequestMeta',
    'StoqResponse',
    'WorkerResponse',
    'StoqException',
    'StoqPluginException',
    'StoqPluginNotFound',
    '__version__',
]
