"""Tests of the Python side of the external plugin protocol: the framing of
stoq_plugin, the stoQ v3 API (data classes, helpers, StoqConfigParser) and
the v3 compatibility host (stoq_host.py) run on the test plugins of
testdata/plugins/v3.

    python3 -m unittest discover -s python/tests -v     (from the repo root)
"""

import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from protocol_client import PYTHON_DIR, V3_DIR, PluginProcess, payload_results, scan_call  # noqa: E402

sys.path.insert(0, PYTHON_DIR)

import stoq  # noqa: E402
import stoq_host  # noqa: E402
import stoq_plugin  # noqa: E402
from stoq import helpers  # noqa: E402
from stoq.data_classes import (  # noqa: E402
    DispatcherResponse,
    Error,
    ExtractedPayload,
    Payload,
    PayloadMeta,
    Request,
    RequestMeta,
    StoqResponse,
    WorkerResponse,
)
from stoq.exceptions import StoqException, StoqPluginException, StoqPluginNotFound  # noqa: E402

# Key order of stoq's JSON output (spec §1.14).
RESPONSE_KEYS = ['results', 'request_meta', 'errors', 'time', 'decorators', 'scan_id']
RESULTS_KEYS = [
    'size',
    'payload_id',
    'payload_meta',
    'plugins_run',
    'extracted_from',
    'extracted_by',
    'workers',
    'archivers',
]
META_KEYS = ['should_archive', 'should_scan', 'extra_data', 'dispatch_to']
REQUEST_META_KEYS = ['archive_payloads', 'source', 'extra_data']


# ---------------------------------------------------------------------------
# Framing
# ---------------------------------------------------------------------------


class TestFraming(unittest.TestCase):
    def pipe_channel(self):
        r, w = os.pipe()
        rfile, wfile = os.fdopen(r, 'rb'), os.fdopen(w, 'wb')
        self.addCleanup(rfile.close)
        return stoq_plugin.Channel(rfile, wfile), wfile

    def test_round_trip_with_blobs(self):
        channel, wfile = self.pipe_channel()
        big = bytes(range(256)) * 4096  # 1 MiB, more than a pipe buffer holds
        messages = [
            ({'type': 'call', 'id': 1, 'text': 'caf\u00e9 \u732b'}, [b'abc\n\x00def', b'', big]),
            ({'type': 'log', 'level': 'info', 'message': 'x'}, []),
        ]

        def writer():
            for header, blobs in messages:
                channel.write(header, blobs)
            wfile.close()

        thread = threading.Thread(target=writer)
        thread.start()
        got = [channel.read(), channel.read(), channel.read()]
        thread.join()
        self.assertEqual(got[0][0], dict(messages[0][0], blobs=[8, 0, len(big)]))
        self.assertEqual(got[0][1], messages[0][1])
        self.assertEqual(got[1], (messages[1][0], []))
        self.assertIsNone(got[2])  # end of input

    def test_header_is_one_compact_utf8_line(self):
        channel, wfile = self.pipe_channel()
        line = channel.encode({'type': 'log', 'message': 'a\nb \u00e9'})
        self.assertEqual(line, '{"type":"log","message":"a\\nb \u00e9"}\n'.encode())
        # lone surrogates (undecodable file names) never make invalid UTF-8
        line = channel.encode({'name': 'bad\udcff'})
        line.decode('utf-8')
        wfile.close()

    def test_not_json_values(self):
        channel, wfile = self.pipe_channel()
        with self.assertRaises(ValueError):
            channel.encode({'x': float('nan')})
        # the v3 fallbacks: bytes, sets, objects
        line = channel.encode({'b': b'caf\xc3\xa9', 's': {1}, 'o': Error('e')})
        self.assertEqual(
            json.loads(line),
            {'b': 'caf\u00e9', 's': [1], 'o': {'error': 'e', 'plugin_name': None, 'payload_id': None}},
        )
        wfile.close()

    def test_truncated_blob_and_bad_header(self):
        channel, wfile = self.pipe_channel()
        wfile.write(b'{"type":"call","blobs":[10]}\n12345')
        wfile.close()
        with self.assertRaises(stoq_plugin.ProtocolError):
            channel.read()
        channel, wfile = self.pipe_channel()
        wfile.write(b'this is not json\n')
        wfile.close()
        with self.assertRaises(stoq_plugin.ProtocolError):
            channel.read()

    def test_truncated_last_line_is_end_of_input(self):
        channel, wfile = self.pipe_channel()
        wfile.write(b'{"type":"ca')
        wfile.close()
        self.assertIsNone(channel.read())

    def test_describe_exception(self):
        self.assertEqual(stoq_plugin.describe_exception(Exception('boom')), 'Exception: boom')
        self.assertEqual(stoq_plugin.describe_exception(KeyError('k')), "KeyError: 'k'")
        self.assertEqual(
            stoq_plugin.describe_exception(StoqPluginException('x')), 'stoq.exceptions.StoqPluginException: x'
        )


# ---------------------------------------------------------------------------
# Data classes and helpers
# ---------------------------------------------------------------------------


class TestDataClasses(unittest.TestCase):
    def test_public_names(self):
        self.assertEqual(stoq.__version__, '3.0.1')
        from stoq import (  # noqa: F401
            ArchiverResponse,
            DecoratorResponse,
            DispatcherResponse,
            Error,
            ExtractedPayload,
            Payload,
            PayloadMeta,
            Request,
            RequestMeta,
            StoqResponse,
            WorkerResponse,
        )
        from stoq.helpers import StoqConfigParser, dumps, get_md5, get_sha1, get_sha256, get_sha512  # noqa: F401
        from stoq.plugins import (  # noqa: F401
            ArchiverPlugin,
            BasePlugin,
            ConnectorPlugin,
            DecoratorPlugin,
            DispatcherPlugin,
            ProviderPlugin,
            WorkerPlugin,
        )
        from stoq.plugins.base import BasePlugin as Base2

        self.assertIs(Base2, BasePlugin)
        for exc in (StoqException, StoqPluginException, StoqPluginNotFound):
            self.assertEqual(exc.__bases__, (Exception,))

    def test_response_shape(self):
        payload = Payload(b'The quick brown fox', PayloadMeta(extra_data={'filename': 'sample.txt'}))
        payload.results.workers['hash'] = {'sha256': '5cac'}
        payload.results.plugins_run['workers'].append('hash')
        response = StoqResponse(Request([payload]))
        data = json.loads(helpers.dumps(response))
        self.assertEqual(list(data), RESPONSE_KEYS)
        result = data['results'][0]
        self.assertEqual(list(result), RESULTS_KEYS)
        self.assertEqual(result['size'], 19)
        self.assertEqual(list(result['payload_meta']), META_KEYS)
        self.assertEqual(result['payload_meta']['extra_data'], {'filename': 'sample.txt'})
        self.assertEqual(result['plugins_run'], {'workers': ['hash'], 'archivers': []})
        self.assertEqual(list(data['request_meta']), REQUEST_META_KEYS)
        self.assertEqual(data['errors'], [])
        self.assertEqual(data['decorators'], {})
        self.assertIsInstance(data['scan_id'], str)
        # pretty form: indent 4, ": " separators
        self.assertTrue(helpers.dumps(response).startswith('{\n    "results": [\n        {\n            "size": 19,'))

    def test_small_classes(self):
        self.assertEqual(json.loads(str(Error('e', 'p', 'i'))), {'error': 'e', 'plugin_name': 'p', 'payload_id': 'i'})
        self.assertEqual(list(vars(Error('e'))), ['error', 'plugin_name', 'payload_id'])
        self.assertEqual(
            vars(PayloadMeta()), {'should_archive': True, 'should_scan': True, 'extra_data': {}, 'dispatch_to': []}
        )
        self.assertEqual(vars(RequestMeta()), {'archive_payloads': True, 'source': None, 'extra_data': {}})
        self.assertEqual(RequestMeta(source='x'), RequestMeta(source='x'))
        with self.assertRaises(AttributeError):
            RequestMeta() == None  # noqa: E711 (reference quirk)
        w = WorkerResponse()
        self.assertEqual(list(vars(w)), ['results', 'extracted', 'errors', 'dispatch_to'])
        self.assertEqual((w.results, w.extracted, w.errors, w.dispatch_to), (None, [], [], []))
        d = DispatcherResponse()
        self.assertEqual(list(vars(d)), ['plugin_names', 'meta', 'errors'])
        self.assertEqual(vars(ExtractedPayload(b'x'))['payload_meta'].should_scan, True)

    def test_payload_quirks(self):
        p = Payload('caf\u00e9')
        self.assertEqual(p.content, b'caf\xc3\xa9')
        self.assertEqual(p.results.size, 4)  # characters, not bytes (reference quirk)
        self.assertEqual(list(vars(p)), ['content', 'dispatch_meta', 'results'])
        p = Payload(b'x', extracted_by='w', extracted_from='parent')
        self.assertEqual((p.results.extracted_by, p.results.extracted_from), (['w'], ['parent']))
        r = Request(payloads=[], errors=[])
        self.assertEqual((r.payloads, r.errors), ([], []))

    def test_split(self):
        a, b = Payload(b'a'), Payload(b'b')
        a.results.workers = {'w1': {'x': 1}, 'w2': {'y': 2}}
        b.results.workers = {'w1': {'z': 3}}
        parts = StoqResponse(Request([a, b, Payload(b'c')])).split()
        self.assertEqual(len(parts), 3)
        self.assertEqual([p['results'][0]['workers'] for p in parts], [{'w1': {'x': 1}}, {'w2': {'y': 2}}, {'w1': {'z': 3}}])
        self.assertEqual(a.results.workers, {'w1': {'x': 1}, 'w2': {'y': 2}})  # untouched

    def test_dumps(self):
        self.assertEqual(helpers.dumps({'key': b'value'}, compactly=True), '{"key": "value"}')
        self.assertEqual(helpers.dumps({'a': 1, 'b': 2}, compactly=True), '{"a": 1, "b": 2}')
        self.assertEqual(helpers.dumps({'a': 1}, indent=0), '{"a": 1}')
        self.assertEqual(helpers.dumps({'a': '\u732b'}, compactly=True), '{"a": "\u732b"}')
        import datetime

        self.assertEqual(helpers.dumps(datetime.datetime(2020, 1, 2, 3, 4, 5)), '"2020-01-02 03:04:05"')
        with self.assertRaises(TypeError):
            helpers.dumps(object())

    def test_digests(self):
        data = b'The quick brown fox'
        self.assertEqual(helpers.get_md5(data), 'a2004f37730b9445670a738fa0fc9ee5')
        self.assertEqual(helpers.get_sha1(data), 'c519c1a06cdbeb2bc499e22137fb48683858b345')
        self.assertEqual(
            helpers.get_sha256(data), '5cac4f980fedc3d3f1f99b4be3472c9b30d56523e632d151237ec9309048bda9'
        )
        self.assertEqual(helpers.get_sha512(data), hashlib.sha512(data).hexdigest())

    def test_format_exc(self):
        try:
            raise Exception('Test exception please ignore')
        except Exception as e:
            text = helpers.format_exc(e, msg='worker:failed to scan')
        self.assertRegex(text, r'^worker:failed to scan: File ".*test_compat\.py", line \d+, in test_format_exc ; '
                         r'Exception: Test exception please ignore$')


class TestConfigParser(unittest.TestCase):
    def parser(self, text):
        config = helpers.StoqConfigParser()
        config.read_string(textwrap.dedent(text))
        return config

    def test_quirks(self):
        config = self.parser(
            """\
            [options]
            List = a, b ,c
            gap = a, ,b
            Flag: True
            # a comment
            list_json = ["item1",
                "item2"]
            dict = {"key": "value"}
            sq_dict: {"bar'foo": "value"}
            invalid = {"key":}
            percent = 100%%
            ref = %(percent)s done
            """
        )
        self.assertEqual(config.getlist('options', 'list'), ['a', 'b', 'c'])
        # reference quirk: the emptiness test is made before stripping
        self.assertEqual(config.getlist('options', 'gap'), ['a', '', 'b'])
        config.set('options', 'trailing', 'a, ')  # as plugin_opts would set it
        self.assertEqual(config.getlist('options', 'trailing'), ['a', ''])
        self.assertEqual(config.getset('options', 'list'), {'a', 'b', 'c'})
        self.assertEqual(config.getlist('options', 'missing', fallback=['x']), ['x'])
        self.assertEqual(config.getset('options', 'missing', fallback=set()), set())
        self.assertEqual(config.getlist('options', 'missing'), [])
        self.assertTrue(config.getboolean('options', 'flag'))
        self.assertEqual(config.getjson('options', 'list_json'), ['item1', 'item2'])
        self.assertEqual(config.getjson('options', 'dict'), {'key': 'value'})
        self.assertEqual(config.getjson('options', 'sq_dict'), {"bar'foo": 'value'})
        self.assertEqual(config.getjson('options', 'missing'), {})
        self.assertEqual(config.getjson('options', 'missing', fallback=[1]), [1])
        with self.assertRaises(json.JSONDecodeError):
            config.getjson('options', 'invalid')
        self.assertEqual(config.get('options', 'percent'), '100%')
        self.assertEqual(config.get('options', 'ref'), '100% done')

    def test_missing_section_header(self):
        import configparser

        with self.assertRaises(configparser.MissingSectionHeaderError):
            self.parser('Core]\nName = x\n')

    def test_build_config_overrides_options(self):
        manifest = os.path.join(V3_DIR, 'v3_worker', 'v3_worker.stoq')
        config = stoq_host.build_config(manifest, 'v3_worker', {'greeting': '50% off', 'extra': 16, 'b': True})
        self.assertEqual(config.get('Core', 'Name'), 'v3_worker')
        self.assertEqual(config.get('Documentation', 'Author'), 'stoq-rs test suite')
        self.assertEqual(config.get('options', 'greeting'), '50% off')
        self.assertEqual(config.getint('options', 'extra'), 16)
        self.assertTrue(config.getboolean('options', 'b'))
        # the host's options replace the manifest's (they already include them)
        self.assertFalse(config.has_option('options', 'return_errors'))

    def test_base_plugin_attributes(self):
        from stoq.plugins import WorkerPlugin

        class W(WorkerPlugin):
            async def scan(self, payload, request):
                return None

        config = self.parser(
            """\
            [Core]
            Name = w
            [Documentation]
            Author = me
            [options]
            required_workers = a, b
            """
        )
        w = W(config)
        self.assertEqual(w.plugin_name, 'w')
        self.assertEqual((w.__author__, w.__version__, w.__website__, w.__description__), ('me', '', '', ''))
        self.assertEqual(w.log.name, 'stoq.w')
        self.assertEqual(w.required_workers, {'a', 'b'})
        self.assertEqual(W(self.parser('[options]\n')).plugin_name, 'W')


# ---------------------------------------------------------------------------
# Conversions between protocol JSON and v3 objects
# ---------------------------------------------------------------------------


def response_json():
    a = payload_results(3, payload_id='a', extra_data={'filename': 'x.txt'})
    a['workers'] = {'v3_worker': {'valuable_insight': 'wow'}}
    a['plugins_run']['workers'] = ['v3_worker', 'v3_hash']
    b = payload_results(11, payload_id='b')
    b['extracted_from'], b['extracted_by'] = ['a'], ['v3_worker']
    b['plugins_run']['workers'] = ['v3_hash']
    b['archivers'] = {'v3_archiver': {'path': '/tmp/x'}}
    return {
        'results': [a, b],
        'request_meta': {'archive_payloads': True, 'source': 'test', 'extra_data': {'k': 'v'}},
        'errors': [{'error': 'worker:failed to scan: boom', 'plugin_name': 'w', 'payload_id': 'a'}, 'bare'],
        'time': '2026-11-23T00:13:23.874654+00:00',
        'decorators': {'d': {'x': 1}},
        'scan_id': 'scan-1',
    }


class TestConversions(unittest.TestCase):
    def test_response_round_trip(self):
        original = response_json()
        response = stoq_host.response_from_json(original)
        self.assertIsInstance(response, StoqResponse)
        self.assertIsInstance(response.errors[0], Error)
        self.assertEqual(response.errors[1], 'bare')
        self.assertEqual(response.results[1].archivers, {'v3_archiver': {'path': '/tmp/x'}})
        text = helpers.dumps(response, compactly=True)
        self.assertEqual(json.loads(text), original)
        self.assertEqual(text, json.dumps(original, ensure_ascii=False))  # same key order everywhere

    def test_unknown_keys_are_kept(self):
        original = dict(response_json(), extra_key=[1])
        self.assertEqual(json.loads(helpers.dumps(stoq_host.response_from_json(original))), original)

    def test_request_holds_every_payload(self):
        scanned = stoq_host.payload_from_json(payload_results(3, payload_id='b'), b'abc')
        request = stoq_host.request_from_json(
            {'results': [payload_results(1, payload_id='a'), payload_results(3, payload_id='b')]}, scanned=scanned
        )
        self.assertEqual([p.results.payload_id for p in request.payloads], ['a', 'b'])
        self.assertIs(request.payloads[1], scanned)
        self.assertEqual(request.payloads[0].content, b'')
        self.assertEqual(request.payloads[0].results.size, 1)
        self.assertEqual(request.request_meta, RequestMeta())

    def test_meta_update(self):
        payload = stoq_host.payload_from_json(payload_results(1), b'x')
        before = stoq_host._meta_snapshot(payload)
        self.assertEqual(stoq_host._meta_update(payload, before), {})
        payload.results.payload_meta.should_archive = False
        payload.results.payload_meta.extra_data['k'] = 'v'
        self.assertEqual(stoq_host._meta_update(payload, before), {'should_archive': False, 'extra_data': {'k': 'v'}})


# ---------------------------------------------------------------------------
# The compatibility host, end to end
# ---------------------------------------------------------------------------


class HostTestCase(unittest.TestCase):
    def start(self, name, options=None, **kw):
        process = PluginProcess.v3(name, **kw)
        self.addCleanup(process.kill)
        ready = process.hello(name, options)
        return process, ready

    def assertReady(self, ready, classes, required_workers=()):
        header, blobs = ready
        self.assertEqual(
            header,
            {
                'type': 'ready',
                'protocol': 1,
                'classes': classes,
                'required_workers': list(required_workers),
                'content': 'blob',
            },
        )

    def make_plugin(self, name, source, manifest_extra=''):
        """A throw-away v3 plugin directory."""
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        with open(os.path.join(tmp, f'{name}.py'), 'w') as f:
            f.write(textwrap.dedent(source))
        with open(os.path.join(tmp, f'{name}.stoq'), 'w') as f:
            f.write(f'[Core]\nName = {name}\nModule = {name}\n{manifest_extra}')
        return tmp


class TestHostWorker(HostTestCase):
    def test_hello_scan_raise_eof(self):
        process, ready = self.start('v3_worker', {'greeting': 'hi', 'return_errors': 'True'})
        self.assertReady(ready, ['worker'])

        (header, blobs), logs = process.call(*scan_call(1, b'The quick brown fox'))
        self.assertEqual(logs, [])
        self.assertEqual(
            header,
            {
                'type': 'return',
                'id': 1,
                'value': {
                    'results': {'valuable_insight': 'wow', 'greeting': 'hi'},
                    'extracted': [
                        {
                            'content': {'blob': 0},
                            'payload_meta': {
                                'should_archive': True,
                                'should_scan': True,
                                'extra_data': {'filename': 'lorem.txt'},
                                'dispatch_to': [],
                            },
                        }
                    ],
                    'errors': [
                        {
                            'error': 'Test error please ignore',
                            'plugin_name': 'v3_worker',
                            'payload_id': '11111111-1111-4111-8111-111111111111',
                        }
                    ],
                    'dispatch_to': [],
                },
                'blobs': [11],
            },
        )
        self.assertEqual(blobs, [b'Lorem ipsum'])

        # the extracted payload scanned in turn extracts nothing
        (header, blobs), _ = process.call(*scan_call(2, b'Lorem ipsum'))
        self.assertEqual((header['id'], header['value']['extracted'], blobs), (2, [], []))

        self.assertEqual(process.close(), 0)

    def test_raise(self):
        process, ready = self.start('v3_worker', {'raise_exception': 'true'})
        (header, _), logs = process.call(*scan_call(9, b'x'))
        self.assertEqual(header, {'type': 'raise', 'id': 9, 'error': 'Exception: Test exception please ignore'})
        # the traceback comes as a debug log, without the host's own frames
        self.assertEqual([log['level'] for log in logs], ['debug'])
        self.assertIn('v3_worker.py", line', logs[0]['message'])
        self.assertNotIn('stoq_host.py', logs[0]['message'])
        # the process is still usable
        (header, _), _ = process.call(*scan_call(10, b'y'))
        self.assertEqual(header['type'], 'raise')
        self.assertEqual(process.close(), 0)

    def test_default_option_and_unimplemented_method(self):
        process, ready = self.start('v3_worker')
        (header, _), _ = process.call(*scan_call(1, b'x'))
        self.assertEqual(header['value']['results']['greeting'], 'hello')
        (header, _), _ = process.call(*scan_call(2, b'x', method='get_dispatches'))
        self.assertEqual(header['type'], 'raise')
        self.assertIn('get_dispatches', header['error'])
        self.assertEqual(process.close(), 0)

    def test_hash_matches_builtin_shape(self):
        process, ready = self.start('v3_hash')
        self.assertReady(ready, ['worker'])
        data = os.urandom(100000)
        (header, _), _ = process.call(*scan_call(1, data))
        results = header['value']['results']
        self.assertEqual(list(results), ['sha256', 'md5', 'sha1', 'sha512'])
        for name, value in results.items():
            self.assertEqual(value, hashlib.new(name, data).hexdigest())
        self.assertEqual(header['value']['extracted'], [])
        self.assertEqual(process.close(), 0)

    def test_request_payloads_and_stdout_safety(self):
        plugin_dir = self.make_plugin(
            'peek',
            """\
            import os, subprocess, sys
            from stoq import WorkerResponse
            from stoq.plugins import WorkerPlugin
            import sibling

            print('printed at import')

            class Peek(WorkerPlugin):
                async def scan(self, payload, request):
                    print('printed in scan')
                    os.write(1, b'written to fd 1\\n')
                    subprocess.run(['echo', 'child output'])
                    subprocess.run([sys.executable, '-c', 'import sys; sys.stdin.read()'])
                    self.log.info('hello from %s', self.plugin_name)
                    payload.results.payload_meta.extra_data['seen'] = True
                    return WorkerResponse({
                        'contents': [p.content for p in request.payloads],
                        'ids': [p.results.payload_id for p in request.payloads],
                        'scanned_is_in_request': any(p is payload for p in request.payloads),
                        'sibling': sibling.VALUE,
                        'dispatch_meta': payload.dispatch_meta,
                    })
            """,
        )
        with open(os.path.join(plugin_dir, 'sibling.py'), 'w') as f:
            f.write("VALUE = 'sibling import works'\n")
        process, ready = self.start('peek', plugin_dir=plugin_dir)
        self.assertReady(ready, ['worker'])
        header, blobs = scan_call(3, b'scanned', others=[payload_results(5, payload_id='other')])
        header['payload']['dispatch_meta'] = {'d': {'rule': 'x'}}
        (answer, _), logs = process.call(header, blobs)
        self.assertEqual(answer['type'], 'return', answer)
        self.assertEqual(
            answer['value']['results'],
            {
                'contents': ['scanned', ''],
                'ids': ['11111111-1111-4111-8111-111111111111', 'other'],
                'scanned_is_in_request': True,
                'sibling': 'sibling import works',
                'dispatch_meta': {'d': {'rule': 'x'}},
            },
        )
        self.assertEqual(answer['value']['payload_meta_update'], {'extra_data': {'seen': True}})
        self.assertEqual(logs, [{'type': 'log', 'level': 'info', 'message': 'hello from peek'}])
        self.assertEqual(process.close(), 0)
        stderr = process.stderr_text()
        for text in ('printed at import', 'printed in scan', 'written to fd 1', 'child output'):
            self.assertIn(text, stderr)

    def test_hang_and_crash(self):
        process, ready = self.start('v3_hang')
        (header, _), _ = process.call(*scan_call(1, b'fine'))
        self.assertEqual(header['value']['results'], {'ok': True})
        process.send(*scan_call(2, b'hang on'))
        readable, _, _ = select.select([process.proc.stdout], [], [], 1.0)
        self.assertEqual(readable, [])  # no answer: the host's timeout kills it
        process.kill()

        process, ready = self.start('v3_crash')
        (header, _), _ = process.call(*scan_call(1, b'fine'))
        self.assertEqual(header['value']['results'], {'ok': True})
        process.send(*scan_call(2, b'crash now'))
        self.assertIsNone(process.recv())
        self.assertEqual(process.proc.wait(timeout=10), 3)

    def test_needs_pkg_without_venv(self):
        process, ready = self.start('v3_needs_pkg')
        self.assertEqual(ready[0], {'type': 'fatal', 'error': "ModuleNotFoundError: No module named 'stoqtestpkg'"})
        self.assertEqual(process.proc.wait(timeout=10), 1)

    def test_needs_pkg_with_venv(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        venv = os.path.join(tmp, 'venv')
        plugin_dir = os.path.join(V3_DIR, 'v3_needs_pkg')
        try:
            subprocess.run([sys.executable, '-m', 'venv', venv], check=True, capture_output=True, timeout=120)
            python = os.path.join(venv, 'bin', 'python')
            subprocess.run(
                [python, '-m', 'pip', 'install', '--no-index', '-r', 'requirements.txt'],
                cwd=plugin_dir,
                check=True,
                capture_output=True,
                timeout=120,
            )
        except (subprocess.SubprocessError, OSError) as e:
            self.skipTest(f'cannot make a virtual environment here: {e}')
        process, ready = self.start('v3_needs_pkg', python=python)
        self.assertReady(ready, ['worker'])
        (header, _), _ = process.call(*scan_call(1, b'x'))
        self.assertEqual(header['value']['results'], {'pkg': 'from the venv'})
        self.assertEqual(process.close(), 0)


class TestHostLoading(HostTestCase):
    def fatal_of(self, name, plugin_dir):
        process, ready = self.start(name, plugin_dir=plugin_dir)
        self.assertEqual(ready[0]['type'], 'fatal')
        self.assertEqual(process.proc.wait(timeout=10), 1)
        return ready[0]['error']

    def test_no_plugin_class(self):
        plugin_dir = self.make_plugin('none', 'from stoq.plugins import WorkerPlugin\nclass NotAPlugin:\n    pass\n')
        self.assertEqual(
            self.fatal_of('none', plugin_dir),
            'stoq.exceptions.StoqException: No valid plugin classes found in the module for none',
        )

    def test_abstract_class_does_not_count(self):
        plugin_dir = self.make_plugin(
            'abstract', 'from stoq.plugins import WorkerPlugin\nclass Incomplete(WorkerPlugin):\n    pass\n'
        )
        self.assertIn('No valid plugin classes found', self.fatal_of('abstract', plugin_dir))

    def test_multiple_plugin_classes(self):
        plugin_dir = self.make_plugin(
            'many',
            """\
            from stoq.plugins import WorkerPlugin
            class One(WorkerPlugin):
                async def scan(self, payload, request):
                    pass
            class Two(WorkerPlugin):
                async def scan(self, payload, request):
                    pass
            """,
        )
        self.assertEqual(
            self.fatal_of('many', plugin_dir),
            'stoq.exceptions.StoqException: Multiple possible plugin classes found in the module for many, '
            'unable to distinguish which to use.',
        )

    def test_constructor_failure(self):
        process, ready = self.start('v3_archiver')  # archive_dir not set
        self.assertEqual(
            ready[0], {'type': 'fatal', 'error': 'stoq.exceptions.StoqPluginException: archive_dir has not been defined'}
        )

    def test_wrong_protocol_version(self):
        process = PluginProcess.v3('v3_worker')
        self.addCleanup(process.kill)
        process.send({'type': 'hello', 'protocol': 99, 'plugin_name': 'v3_worker', 'options': {}})
        header, _ = process.recv()
        self.assertEqual(header['type'], 'fatal')
        self.assertIn('99', header['error'])
        self.assertIn('1', header['error'])

    def test_eof_before_hello(self):
        process = PluginProcess.v3('v3_worker')
        self.addCleanup(process.kill)
        self.assertEqual(process.close(), 0)

    def test_multiclass_and_required_workers(self):
        process, ready = self.start('v3_multiclass', {'workers': 'a, b', 'rule_count': '2', 'required_workers': 'x, v3_hash'})
        self.assertReady(ready, ['worker', 'dispatcher'], ['v3_hash', 'x'])
        (header, _), _ = process.call(*scan_call(1, b'x', method='get_dispatches'))
        self.assertEqual(
            header['value'],
            {'plugin_names': ['a', 'a', 'b', 'b'], 'meta': {'a': {'rule1': 'a'}, 'b': {'rule1': 'b'}}, 'errors': []},
        )
        (header, blobs), _ = process.call(*scan_call(2, b'x'))
        self.assertEqual(header['value']['results'], {'valuable_insight': 'wow'})
        self.assertEqual(blobs, [b'Lorem ipsum'])
        self.assertEqual(process.close(), 0)


class TestHostOtherClasses(HostTestCase):
    def test_dispatcher(self):
        process, ready = self.start('v3_dispatcher', {'workers': 'v3_worker, v3_hash'})
        self.assertReady(ready, ['dispatcher'])
        (header, _), _ = process.call(*scan_call(4, b'x', method='get_dispatches'))
        self.assertEqual(
            header,
            {
                'type': 'return',
                'id': 4,
                'value': {
                    'plugin_names': ['v3_worker', 'v3_hash'],
                    'meta': {'test_key': 'Useful metadata info'},
                    'errors': [],
                    'payload_meta_update': {'should_archive': False},
                },
            },
        )
        self.assertEqual(process.close(), 0)

    def test_archiver(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        process, ready = self.start('v3_archiver', {'archive_dir': tmp})
        self.assertReady(ready, ['archiver'])
        data = b'archive me'
        sha256 = hashlib.sha256(data).hexdigest()
        path = os.path.join(tmp, sha256)
        (header, _), _ = process.call(*scan_call(1, data, method='archive'))
        self.assertEqual(header['value'], {'results': {'path': path, 'sha256': sha256}, 'errors': []})
        with open(path, 'rb') as f:
            self.assertEqual(f.read(), data)

        (header, blobs), _ = process.call(
            {'type': 'call', 'id': 2, 'method': 'get', 'task': {'results': {'path': path}, 'errors': []}}
        )
        self.assertEqual(
            header['value'],
            {
                'content': {'blob': 0},
                'payload_meta': {
                    'should_archive': True,
                    'should_scan': True,
                    'extra_data': {'path': path},
                    'dispatch_to': [],
                },
            },
        )
        self.assertEqual(blobs, [data])
        (header, _), _ = process.call(
            {'type': 'call', 'id': 3, 'method': 'get', 'task': {'results': {'path': path + '.missing'}}}
        )
        self.assertEqual(header['type'], 'raise')
        self.assertTrue(header['error'].startswith('FileNotFoundError: '), header['error'])
        self.assertEqual(process.close(), 0)

    def test_decorator(self):
        process, ready = self.start('v3_decorator')
        self.assertReady(ready, ['decorator'])
        (header, _), _ = process.call({'type': 'call', 'id': 1, 'method': 'decorate', 'response': response_json()})
        self.assertEqual(
            header['value'], {'results': {'payload_count': 2, 'workers_seen': ['v3_hash', 'v3_worker']}, 'errors': []}
        )
        self.assertEqual(process.close(), 0)

    def test_connector(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        output = os.path.join(tmp, 'out.jsonl')
        process, ready = self.start('v3_connector', {'output_file': output})
        self.assertReady(ready, ['connector'])
        response = response_json()
        for call_id in (1, 2):
            (header, _), _ = process.call({'type': 'call', 'id': call_id, 'method': 'save', 'response': response})
            self.assertEqual(header, {'type': 'return', 'id': call_id, 'value': None})
        self.assertEqual(process.close(), 0)
        with open(output, encoding='utf-8') as f:
            lines = f.read().splitlines()
        # byte for byte what Python stoQ's dumps(response, compactly=True) gives
        self.assertEqual(lines, [json.dumps(response, ensure_ascii=False)] * 2)

    def test_provider_payloads(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        for name, data in (('b.bin', b'\x00\xffbee'), ('a.txt', b'first'), ('c.txt', b'')):
            with open(os.path.join(tmp, name), 'wb') as f:
                f.write(data)
        os.mkdir(os.path.join(tmp, 'subdir'))
        process, ready = self.start('v3_provider', {'source_dir': tmp})
        self.assertReady(ready, ['provider'])
        process.send({'type': 'call', 'id': 1, 'method': 'ingest'})
        puts = []
        while True:
            header, blobs = process.recv()
            if header['type'] != 'put':
                break
            item = header['item']['payload']
            self.assertEqual(item['content'], {'blob': 0})
            puts.append((item['payload_meta']['extra_data']['filename'], blobs[0], item['payload_meta']['should_scan']))
        self.assertEqual(header, {'type': 'return', 'id': 1, 'value': None})
        self.assertEqual(puts, [('a.txt', b'first', True), ('b.bin', b'\x00\xffbee', True), ('c.txt', b'', True)])
        self.assertEqual(process.close(), 0)

    def test_provider_tasks_requests_and_bad_items(self):
        plugin_dir = self.make_plugin(
            'prov',
            """\
            from stoq import Payload, Request, RequestMeta
            from stoq.plugins import ProviderPlugin

            class Prov(ProviderPlugin):
                async def ingest(self, queue):
                    await queue.put({'v3_archiver': {'path': '/x'}})
                    queue.put_nowait(Request([Payload(b'one'), Payload('two')], RequestMeta(extra_data={'dummy': '1'})))
                    await queue.put('not an item')
            """,
        )
        process, ready = self.start('prov', plugin_dir=plugin_dir)
        process.send({'type': 'call', 'id': 5, 'method': 'ingest'})
        header, _ = process.recv()
        self.assertEqual(header, {'type': 'put', 'item': {'archiver_task': {'v3_archiver': {'path': '/x'}}}})
        header, blobs = process.recv()
        meta = {'should_archive': True, 'should_scan': True, 'extra_data': {}, 'dispatch_to': []}
        self.assertEqual(
            header,
            {
                'type': 'put',
                'item': {
                    'request': {
                        'payloads': [
                            {'content': {'blob': 0}, 'payload_meta': meta},
                            {'content': {'blob': 1}, 'payload_meta': meta},
                        ],
                        'request_meta': {'archive_payloads': True, 'source': None, 'extra_data': {'dummy': '1'}},
                    }
                },
                'blobs': [3, 3],
            },
        )
        self.assertEqual(blobs, [b'one', b'two'])
        (header, _), logs = process.recv_answer()
        self.assertEqual(header, {'type': 'return', 'id': 5, 'value': None})
        self.assertEqual(len(logs), 1)
        self.assertEqual(logs[0]['level'], 'error')
        self.assertIn('Item dropped', logs[0]['message'])
        self.assertEqual(process.close(), 0)

    def test_provider_as_tasks(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        for name in ('y', 'x'):
            open(os.path.join(tmp, name), 'w').close()
        process, ready = self.start('v3_provider', {'source_dir': tmp, 'as_tasks': 'yes'})
        process.send({'type': 'call', 'id': 1, 'method': 'ingest'})
        items = [process.recv()[0] for _ in range(3)]
        self.assertEqual(
            items,
            [
                {'type': 'put', 'item': {'archiver_task': {'v3_archiver': {'path': os.path.join(tmp, 'x')}}}},
                {'type': 'put', 'item': {'archiver_task': {'v3_archiver': {'path': os.path.join(tmp, 'y')}}}},
                {'type': 'return', 'id': 1, 'value': None},
            ],
        )
        self.assertEqual(process.close(), 0)


if __name__ == '__main__':
    unittest.main()
