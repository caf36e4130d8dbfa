"""stoq_host: runs an unchanged stoQ v3 Python plugin behind the external
plugin protocol (docs/PLUGIN_PROTOCOL.md, "Python v3 plugins").

Usage (cwd = the manifest's directory)::

    python -u stoq_host.py <plugin module .py> <manifest .stoq>

On ``hello`` the module is imported and its plugin class found as the
reference does (spec §3.5), configured as the reference does (§3.3-3.4) and
instantiated. Each call converts the protocol's JSON into v3 objects
(``Payload``, ``Request``, ``StoqResponse``, ...), runs the plugin's
coroutine on one persistent asyncio loop and converts the answer back.
"""

import importlib.util
import inspect
import json
import os
import sys

# The stoq package lives next to this file; make sure it is found first.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stoq_plugin  # noqa: E402
from stoq import helpers  # noqa: E402
from stoq.data_classes import (  # noqa: E402
    ArchiverResponse,
    Error,
    Payload,
    PayloadMeta,
    PayloadResults,
    Request,
    RequestMeta,
    StoqResponse,
)
from stoq.exceptions import StoqException  # noqa: E402
stoq_plugin.INTERNAL_FILES.add(os.path.abspath(__file__))

from stoq.plugins import (  # noqa: E402
    ArchiverPlugin,
    BasePlugin,
    ConnectorPlugin,
    DecoratorPlugin,
    DispatcherPlugin,
    ProviderPlugin,
    WorkerPlugin,
)

_BASE_CLASSES = (
    BasePlugin,
    WorkerPlugin,
    DispatcherPlugin,
    ArchiverPlugin,
    DecoratorPlugin,
    ConnectorPlugin,
    ProviderPlugin,
)

# isinstance check -> protocol class name, in the protocol's order.
_ROLES = (
    (WorkerPlugin, 'worker'),
    (DispatcherPlugin, 'dispatcher'),
    (ArchiverPlugin, 'archiver'),
    (DecoratorPlugin, 'decorator'),
    (ConnectorPlugin, 'connector'),
    (ProviderPlugin, 'provider'),
)


# ---------------------------------------------------------------------------
# Loading (spec §3.5)
# ---------------------------------------------------------------------------


def load_module(module_name, path):
    """Import ``path`` afresh under ``module_name``, as the reference does:
    not registered in ``sys.modules`` (so it cannot shadow a library of the
    same name). The module's directory is appended to ``sys.path`` so that
    sibling modules can be imported (after the standard library and
    installed packages, so a plugin file never shadows those)."""
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.append(directory)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StoqException(f'Unable to load module at: {path}')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find_plugin_class(module, plugin_name):
    """Exactly one concrete subclass of the base classes among the module's
    members (imported ones count too), else the reference's errors."""
    candidates = [
        member
        for _, member in inspect.getmembers(module, inspect.isclass)
        if issubclass(member, BasePlugin) and member not in _BASE_CLASSES and not inspect.isabstract(member)
    ]
    if not candidates:
        raise StoqException(f'No valid plugin classes found in the module for {plugin_name}')
    if len(candidates) > 1:
        raise StoqException(
            f'Multiple possible plugin classes found in the module for {plugin_name}, '
            'unable to distinguish which to use.'
        )
    return candidates[0]


def build_config(manifest_path, plugin_name, options):
    """The plugin's StoqConfigParser: the manifest ([Core],
    [Documentation], [options]) with ``options`` replaced by the host's
    merged options (which already include the manifest's own)."""
    config = helpers.StoqConfigParser()
    if manifest_path:
        with open(manifest_path, encoding='utf-8') as f:
            config.read_file(f, source=manifest_path)
    if not config.has_section('Core'):
        config.add_section('Core')
    if not config.has_option('Core', 'Name') and plugin_name:
        config.set('Core', 'Name', plugin_name)
    if config.has_section('options'):
        config.remove_section('options')
    config.add_section('options')
    for key, value in (options or {}).items():
        if isinstance(value, bool):
            value = 'True' if value else 'False'
        elif not isinstance(value, str):
            value = str(value)
        # The host sends final values (already interpolated); '%' is
        # escaped so configparser's interpolation gives them back unchanged.
        config.set('options', str(key), value.replace('%', '%%'))
    return config


# ---------------------------------------------------------------------------
# Protocol JSON -> v3 objects
# ---------------------------------------------------------------------------


def meta_from_json(d):
    d = d or {}
    return PayloadMeta(
        should_archive=d.get('should_archive', True),
        should_scan=d.get('should_scan', True),
        extra_data=d.get('extra_data'),
        dispatch_to=d.get('dispatch_to'),
    )


def _keep_extra_keys(obj, d):
    # Keys the host sends that the v3 class does not know are kept as
    # attributes, so helpers.dumps() still shows them.
    for key, value in d.items():
        if key not in obj.__dict__:
            setattr(obj, key, value)
    return obj


def results_from_json(d):
    results = PayloadResults(
        size=d.get('size', 0),
        payload_id=d.get('payload_id'),
        payload_meta=meta_from_json(d.get('payload_meta')),
        plugins_run=d.get('plugins_run'),
        extracted_from=d.get('extracted_from'),
        extracted_by=d.get('extracted_by'),
        workers=d.get('workers'),
    )
    results.archivers = d.get('archivers') or {}
    return _keep_extra_keys(results, d)


def payload_from_json(results_json, content=b'', dispatch_meta=None):
    payload = Payload(content)
    payload.dispatch_meta = dispatch_meta or {}
    payload.results = results_from_json(results_json or {})
    return payload


def error_from_json(e):
    if isinstance(e, dict):
        return Error(e.get('error'), plugin_name=e.get('plugin_name'), payload_id=e.get('payload_id'))
    return e  # plain strings stay strings, as in the reference


def request_meta_from_json(d):
    d = d or {}
    meta = RequestMeta(
        archive_payloads=d.get('archive_payloads', True), source=d.get('source'), extra_data=d.get('extra_data')
    )
    return _keep_extra_keys(meta, d)


def request_from_json(d, scanned=None):
    """Every payload of the scan: ``scanned`` itself (the real object, with
    content) where its id appears, the others with ``content == b''``."""
    d = d or {}
    payloads = []
    for results_json in d.get('results') or []:
        if scanned is not None and results_json.get('payload_id') == scanned.results.payload_id:
            payloads.append(scanned)
        else:
            payloads.append(payload_from_json(results_json))
    if scanned is not None and all(p is not scanned for p in payloads):
        payloads.append(scanned)
    return Request(
        payloads=payloads,
        request_meta=request_meta_from_json(d.get('request_meta')),
        errors=[error_from_json(e) for e in d.get('errors') or []],
    )


def response_from_json(d):
    d = d or {}
    request = request_from_json(d)
    response = StoqResponse(request, time=d.get('time'), decorators=d.get('decorators'), scan_id=d.get('scan_id'))
    return _keep_extra_keys(response, d)


# ---------------------------------------------------------------------------
# v3 objects -> protocol JSON
# ---------------------------------------------------------------------------


def meta_to_json(meta):
    return {
        'should_archive': meta.should_archive,
        'should_scan': meta.should_scan,
        'extra_data': meta.extra_data,
        # Quirk kept: a bare string is taken character by character, as the
        # reference's core iterates it.
        'dispatch_to': list(meta.dispatch_to or []),
    }


def _content_bytes(content):
    if isinstance(content, str):
        return content.encode()  # as Payload() does
    return bytes(content)


def new_payload_to_json(payload):
    """A Payload (from ``get``/``ingest``) as a protocol new payload."""
    return {'content': _content_bytes(payload.content), 'payload_meta': meta_to_json(payload.results.payload_meta)}


def extracted_to_json(extracted):
    meta = extracted.payload_meta if extracted.payload_meta is not None else PayloadMeta()
    return {'content': _content_bytes(extracted.content), 'payload_meta': meta_to_json(meta)}


def error_to_json(e):
    if isinstance(e, Error):
        return {
            'error': e.error if isinstance(e.error, str) else helpers.dumps(e.error, compactly=True),
            'plugin_name': None if e.plugin_name is None else str(e.plugin_name),
            'payload_id': None if e.payload_id is None else str(e.payload_id),
        }
    if isinstance(e, str):
        return e
    return helpers.dumps(e, compactly=True)


def errors_to_json(errors):
    return [error_to_json(e) for e in errors or []]


def _meta_snapshot(payload):
    meta = payload.results.payload_meta
    return {
        'should_archive': meta.should_archive,
        'should_scan': meta.should_scan,
        # compared as JSON text: robust to values that cannot be deep-copied
        'extra_data': helpers.dumps(meta.extra_data, compactly=True),
    }


def _meta_update(payload, before):
    """What the plugin changed in the scanned payload's payload_meta (the
    reference lets plugins mutate it in place; the Rust host applies the
    returned update after the call)."""
    after = _meta_snapshot(payload)
    meta = payload.results.payload_meta
    update = {}
    for key in ('should_archive', 'should_scan'):
        if after[key] != before[key]:
            update[key] = getattr(meta, key)
    if after['extra_data'] != before['extra_data']:
        update['extra_data'] = meta.extra_data
    return update


# ---------------------------------------------------------------------------
# The provider's queue
# ---------------------------------------------------------------------------


class ProviderQueue:
    """Stands in for the ``asyncio.Queue`` the reference hands to
    ``ingest``: every ``put`` is sent to the host at once. The host reads
    the next message only when the item is queued, so a full queue blocks
    the write (back-pressure through the pipe)."""

    maxsize = 0

    def __init__(self, host):
        self._host = host

    async def put(self, item):
        self._host.put_v3(item)

    def put_nowait(self, item):
        self._host.put_v3(item)

    def qsize(self):
        return 0

    def empty(self):
        return True

    def full(self):
        return False


# ---------------------------------------------------------------------------
# The host
# ---------------------------------------------------------------------------


class V3Host(stoq_plugin.Plugin):
    def __init__(self, module_path, manifest_path=None):
        self.module_path = os.path.abspath(module_path)
        self.manifest_path = os.path.abspath(manifest_path) if manifest_path else None
        self.instance = None
        self.classes = []

    def start(self, hello):
        # Same JSON fallbacks on the wire as the reference's output.
        self.connection.channel.json_default = helpers.JsonComplexEncoder().default
        config = build_config(self.manifest_path, hello.get('plugin_name'), hello.get('options'))
        name = config.get('Core', 'Name', fallback=None) or hello.get('plugin_name')
        module_name = config.get('Core', 'Module', fallback=None) or os.path.splitext(
            os.path.basename(self.module_path)
        )[0]
        module = load_module(module_name, self.module_path)
        cls = find_plugin_class(module, name)
        self.instance = cls(config)
        self.classes = [role for base, role in _ROLES if isinstance(self.instance, base)]
        if isinstance(self.instance, WorkerPlugin):
            self.required_workers = sorted(getattr(self.instance, 'required_workers', None) or ())

    def _run(self, value):
        return self.connection.run_awaitable(value)

    def _payload_and_request(self, payload_json, request_json):
        payload = payload_from_json(
            payload_json.get('results'), payload_json['content'], payload_json.get('dispatch_meta')
        )
        return payload, request_from_json(request_json, scanned=payload)

    # -- worker ---------------------------------------------------------
    def scan(self, payload_json, request_json):
        payload, request = self._payload_and_request(payload_json, request_json)
        before = _meta_snapshot(payload)
        response = self._run(self.instance.scan(payload, request))
        update = _meta_update(payload, before)
        if response is None:
            return {'payload_meta_update': update} if update else None
        value = {
            'results': response.results,
            'extracted': [extracted_to_json(e) for e in response.extracted or []],
            'errors': errors_to_json(response.errors),
            'dispatch_to': list(response.dispatch_to or []),
        }
        if update:
            value['payload_meta_update'] = update
        return value

    # -- dispatcher -----------------------------------------------------
    def get_dispatches(self, payload_json, request_json):
        payload, request = self._payload_and_request(payload_json, request_json)
        before = _meta_snapshot(payload)
        response = self._run(self.instance.get_dispatches(payload, request))
        update = _meta_update(payload, before)
        if response is None:
            return {'payload_meta_update': update} if update else None
        value = {
            'plugin_names': list(response.plugin_names or []),
            'meta': response.meta,
            'errors': errors_to_json(response.errors),
        }
        if update:
            value['payload_meta_update'] = update
        return value

    # -- archiver -------------------------------------------------------
    def archive(self, payload_json, request_json):
        payload, request = self._payload_and_request(payload_json, request_json)
        response = self._run(self.instance.archive(payload, request))
        if response is None:
            return None
        return {'results': response.results, 'errors': errors_to_json(response.errors)}

    def get(self, task_json):
        task = ArchiverResponse(results=task_json.get('results'), errors=task_json.get('errors'))
        payload = self._run(self.instance.get(task))
        return None if payload is None else new_payload_to_json(payload)

    # -- decorator, connector -------------------------------------------
    def decorate(self, response_json):
        response = self._run(self.instance.decorate(response_from_json(response_json)))
        if response is None:
            return None
        return {'results': response.results, 'errors': errors_to_json(response.errors)}

    def save(self, response_json):
        self._run(self.instance.save(response_from_json(response_json)))
        return None

    # -- provider -------------------------------------------------------
    def ingest(self):
        self._run(self.instance.ingest(ProviderQueue(self)))
        return None

    def put_v3(self, item):
        """One item a v3 provider put on its queue -> a ``put`` message."""
        if isinstance(item, Payload):
            self.put({'payload': new_payload_to_json(item)})
        elif isinstance(item, Request):
            self.put(
                {
                    'request': {
                        'payloads': [new_payload_to_json(p) for p in item.payloads],
                        'request_meta': json.loads(helpers.dumps(item.request_meta, compactly=True)),
                    }
                }
            )
        elif isinstance(item, dict):
            # {archiver_name: task_meta}: fetched with that archiver's get()
            self.put({'archiver_task': item})
        else:
            # The reference accepts anything here and its consumer then dies
            # on it; we drop the item and say why.
            self.instance.log.error(
                f'Provider put an item of type {type(item).__name__} on the queue; '
                'expected Payload, Request or {archiver: task}. Item dropped.'
            )


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or len(argv) > 2:
        sys.stderr.write('usage: stoq_host.py <plugin module .py> [<manifest .stoq>]\n')
        return 2
    stoq_plugin.run(V3Host(*argv))


if __name__ == '__main__':
    sys.exit(main())
