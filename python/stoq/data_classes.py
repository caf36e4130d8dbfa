"""The data classes of the stoQ v3 API (spec §1).

Plain mutable objects. Their JSON shape (through ``helpers.dumps``) is their
attributes in the order ``__init__`` assigns them, so the assignment order
below is part of the contract. Where the reference uses ``x or default``
(an explicit empty list/dict also becomes a fresh default), so do we.
"""

import uuid
from copy import deepcopy
from datetime import datetime

from . import helpers

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
]


class _Printable:
    """``str()`` is pretty JSON, ``repr()`` the attribute dict."""

    def __str__(self):
        return helpers.dumps(self)

    def __repr__(self):
        return repr(self.__dict__)


class Error(_Printable):
    def __init__(self, error, plugin_name=None, payload_id=None):
        self.error = error
        self.plugin_name = plugin_name
        self.payload_id = payload_id


class PayloadMeta(_Printable):
    def __init__(self, should_archive=True, should_scan=True, extra_data=None, dispatch_to=None):
        self.should_archive = should_archive
        self.should_scan = should_scan
        self.extra_data = {} if extra_data is None else extra_data
        # No coercion, as in the reference: a bare string is iterated by
        # character when the core reads it.
        self.dispatch_to = [] if dispatch_to is None else dispatch_to


class PayloadResults(_Printable):
    def __init__(
        self,
        size,
        payload_id=None,
        payload_meta=None,
        plugins_run=None,
        extracted_from=None,
        extracted_by=None,
        workers=None,
    ):
        self.size = size
        self.payload_id = str(uuid.uuid4()) if payload_id is None else payload_id
        self.payload_meta = PayloadMeta() if payload_meta is None else payload_meta
        self.plugins_run = plugins_run or {'workers': [], 'archivers': []}
        if isinstance(extracted_from, str):
            extracted_from = [extracted_from]
        self.extracted_from = extracted_from or []
        if isinstance(extracted_by, str):
            extracted_by = [extracted_by]
        self.extracted_by = extracted_by or []
        self.workers = workers or {}
        self.archivers = {}


class Payload:
    # No __str__ in the reference (only __repr__).
    def __init__(self, content, payload_meta=None, extracted_by=None, extracted_from=None, payload_id=None):
        # Quirk kept: the size is taken before a str is encoded, so it counts
        # characters, not bytes.
        size = len(content)
        self.content = content if isinstance(content, bytes) else content.encode()
        self.dispatch_meta = {}
        self.results = PayloadResults(
            size=size,
            payload_id=payload_id,
            payload_meta=payload_meta,
            extracted_from=extracted_from,
            extracted_by=extracted_by,
        )

    def __repr__(self):
        return repr(self.__dict__)


class RequestMeta(_Printable):
    def __init__(self, archive_payloads=True, source=None, extra_data=None):
        self.archive_payloads = archive_payloads
        self.source = source
        self.extra_data = {} if extra_data is None else extra_data

    def __eq__(self, other):
        # As the reference: comparing with a non-object (None) raises
        # AttributeError, and the class is unhashable.
        return self.__dict__ == other.__dict__


class Request(_Printable):
    def __init__(self, payloads=None, request_meta=None, errors=None):
        self.payloads = payloads or []
        self.request_meta = request_meta or RequestMeta()
        self.errors = errors or []


class StoqResponse(_Printable):
    def __init__(self, request, time=None, decorators=None, scan_id=None):
        # The same objects as the request's, not copies.
        self.results = [payload.results for payload in request.payloads]
        self.request_meta = request.request_meta
        self.errors = request.errors
        self.time = datetime.now().isoformat() if time is None else time
        self.decorators = {} if decorators is None else decorators
        self.scan_id = str(uuid.uuid4()) if scan_id is None else scan_id

    def split(self):
        """One plain dict per (payload, worker result): a copy of this
        response whose ``results`` holds only that payload with only that
        worker's results."""
        parts = []
        for result in self.results:
            for name, value in result.workers.items():
                part = deepcopy(self.__dict__)
                single = deepcopy(result.__dict__)
                single['workers'] = {name: value}
                part['results'] = [single]
                parts.append(part)
        return parts


class ExtractedPayload:
    # Neither __str__ nor __repr__ in the reference. No str coercion here.
    def __init__(self, content, payload_meta=None):
        self.content = content
        self.payload_meta = PayloadMeta() if payload_meta is None else payload_meta


class WorkerResponse(_Printable):
    def __init__(self, results=None, extracted=None, errors=None, dispatch_to=None):
        self.results = results  # None means "no entry in results.workers"
        self.extracted = extracted or []
        self.errors = errors or []  # Error objects; plain strings pass through
        self.dispatch_to = dispatch_to or []


class ArchiverResponse(_Printable):
    def __init__(self, results=None, errors=None):
        self.results = results
        self.errors = errors or []


class DispatcherResponse(_Printable):
    def __init__(self, plugin_names=None, meta=None, errors=None):
        self.plugin_names = [] if plugin_names is None else plugin_names
        self.meta = {} if meta is None else meta
        self.errors = errors or []


class DecoratorResponse(_Printable):
    def __init__(self, results=None, errors=None):
        self.results = results
        self.errors = errors or []
