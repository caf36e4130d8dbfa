"""Tests of the Python SDK (stoq_plugin) through real processes, of the
example plugins (examples/plugins/) and of the misbehaving external test
plugins (testdata/plugins/external/)."""

import json
import os
import shutil
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from protocol_client import ROOT, PluginProcess, scan_call  # noqa: E402

EXAMPLES = os.path.join(ROOT, 'examples', 'plugins')
EXTERNAL = os.path.join(ROOT, 'testdata', 'plugins', 'external')


class ProcessTestCase(unittest.TestCase):
    def start(self, argv, cwd, name='test', options=None):
        process = PluginProcess(argv, cwd)
        self.addCleanup(process.kill)
        return process, process.hello(name, options)

    def tmpdir(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        return tmp

    def sdk_plugin(self, source, options=None):
        tmp = self.tmpdir()
        with open(os.path.join(tmp, 'plugin.py'), 'w') as f:
            f.write(textwrap.dedent(source))
        return self.start([sys.executable, 'plugin.py'], tmp, options=options)


class TestExamples(ProcessTestCase):
    def test_python_wordcount(self):
        process, ready = self.start(['python3', 'wordcount.py'], os.path.join(EXAMPLES, 'python-sdk-wordcount'))
        self.assertEqual(
            ready[0], {'type': 'ready', 'protocol': 1, 'classes': ['worker'], 'required_workers': [], 'content': 'blob'}
        )
        data = b'one two\nthree\tfour  five\n\xff\xfe six'
        (header, _), _ = process.call(*scan_call(1, data))
        self.assertEqual(
            header, {'type': 'return', 'id': 1, 'value': {'results': {'words': 7, 'lines': 2, 'bytes': len(data)}}}
        )
        (header, _), _ = process.call(*scan_call(2, b''))
        self.assertEqual(header['value'], {'results': {'words': 0, 'lines': 0, 'bytes': 0}})
        self.assertEqual(process.close(), 0)

    def test_shell_linecount(self):
        process, ready = self.start(['./linecount.sh'], os.path.join(EXAMPLES, 'shell-linecount'))
        self.assertEqual(
            ready[0], {'type': 'ready', 'protocol': 1, 'classes': ['worker'], 'required_workers': [], 'content': 'file'}
        )
        tmp = self.tmpdir()
        path = os.path.join(tmp, 'a file, with {odd} name.txt')
        data = b'line 1\nline 2 "quoted", {braces}\nno newline at the end'
        with open(path, 'wb') as f:
            f.write(data)
        expected = {'results': {'lines': 2, 'bytes': len(data)}}
        header, _ = scan_call(41, b'')
        header['payload']['content'] = {'path': path}
        # nested data with "type", "id", "path" and "content" keys
        decoy = {'type': 'call', 'id': 5, 'path': '/elsewhere', 'content': {'path': '/elsewhere'}}
        header['payload']['results']['workers'] = {'w': decoy}
        header['request']['results'][0]['workers'] = {'w': decoy}
        (answer, _), _ = process.call(header)
        self.assertEqual(answer, {'type': 'return', 'id': 41, 'value': expected})

        # compact JSON with type/id/method after the arguments, as the Rust
        # host (serde_json, preserve_order) writes it today
        rust_order = {k: header[k] for k in ('payload', 'request')}
        rust_order.update(type='call', id=42, method='scan')
        process.proc.stdin.write(json.dumps(rust_order, separators=(',', ':')).encode() + b'\n')
        process.proc.stdin.flush()
        self.assertEqual(process.recv()[0], {'type': 'return', 'id': 42, 'value': expected})

        header = dict(header, id=43, method='archive')
        (answer, _), _ = process.call(header)
        self.assertEqual(answer, {'type': 'raise', 'id': 43, 'error': 'linecount does not implement archive'})

        header['method'] = 'scan'
        header['payload'] = dict(header['payload'], content={'path': os.path.join(tmp, 'missing')})
        (answer, _), _ = process.call(dict(header, id=44))
        self.assertEqual(answer, {'type': 'raise', 'id': 44, 'error': 'no readable content file'})

        # blobs it did not ask for are skipped, not taken for headers
        (answer, _), _ = process.call(*scan_call(45, b'{"type":"hello"}\n'))
        self.assertEqual(answer['type'], 'raise')
        header['payload'] = dict(header['payload'], content={'path': path})
        (answer, _), _ = process.call(dict(header, id=46))
        self.assertEqual(answer['value'], expected)
        self.assertEqual(process.close(), 0)


class TestMisbehavingPlugins(ProcessTestCase):
    def test_garbage(self):
        process, ready = self.start(['./garbage.sh'], os.path.join(EXTERNAL, 'garbage'))
        self.assertEqual(ready[0]['type'], 'ready')
        process.send(*scan_call(1, b'x'))
        self.assertEqual(process.proc.stdout.readline(), b'this is not json\n')

    def test_exits(self):
        process, ready = self.start(['./exits.sh'], os.path.join(EXTERNAL, 'exits'))
        self.assertEqual(ready[0]['type'], 'ready')
        process.send(*scan_call(1, b'x'))
        self.assertIsNone(process.recv())
        self.assertEqual(process.proc.wait(timeout=10), 7)


class TestSdk(ProcessTestCase):
    def test_all_methods_logging_and_put(self):
        process, ready = self.sdk_plugin(
            """\
            import asyncio, logging, os, sys
            import stoq_plugin

            log = logging.getLogger('mine')

            class Everything(stoq_plugin.Plugin):
                required_workers = ['hash']

                def start(self, hello):
                    log.info('starting')  # before ready: goes to stderr
                    print('print goes to stderr')
                    os.write(1, b'so does fd 1\\n')
                    self.prefix = self.options.get('prefix', '?')

                async def scan(self, payload, request):
                    await asyncio.sleep(0)
                    log.warning('scanning %d bytes', len(payload['content']))
                    self.log('debug', 'direct log')
                    return {
                        'results': {'prefix': self.prefix, 'request_size': len(request['results'])},
                        'extracted': [
                            {'content': payload['content'][::-1]},
                            {'content': 'text', 'payload_meta': {'extra_data': {'filename': 'x'}}},
                        ],
                    }

                def get_dispatches(self, payload, request):
                    return {'plugin_names': ['a'], 'payload_meta_update': {'should_scan': False}}

                def get(self, task):
                    with open(task['results']['path'], 'w') as f:
                        f.write('from a file')
                    return {'content_path': task['results']['path']}

                def decorate(self, response):
                    return {'results': {'n': len(response['results'])}}

                def save(self, response):
                    return 'ignored'

                def ingest(self):
                    self.put({'payload': {'content': b'p1'}})
                    self.put({'request': {'payloads': [{'content': b'r1'}, {'content': b'r2'}], 'request_meta': {}}})
                    self.put({'archiver_task': {'a': {'k': 1}}})
                    self.put({'payload': {'content': {'blob': 0}}}, [b'raw'])

            stoq_plugin.run(Everything)
            """,
            options={'prefix': 'P'},
        )
        self.assertEqual(
            ready[0],
            {
                'type': 'ready',
                'protocol': 1,
                'classes': ['worker', 'dispatcher', 'archiver', 'decorator', 'connector', 'provider'],
                'required_workers': ['hash'],
                'content': 'blob',
            },
        )
        (header, blobs), logs = process.call(*scan_call(1, b'abc'))
        self.assertEqual(
            logs,
            [
                {'type': 'log', 'level': 'warning', 'message': 'scanning 3 bytes'},
                {'type': 'log', 'level': 'debug', 'message': 'direct log'},
            ],
        )
        self.assertEqual(
            header,
            {
                'type': 'return',
                'id': 1,
                'value': {
                    'results': {'prefix': 'P', 'request_size': 1},
                    'extracted': [
                        {'content': {'blob': 0}},
                        {'content': {'blob': 1}, 'payload_meta': {'extra_data': {'filename': 'x'}}},
                    ],
                },
                'blobs': [3, 4],
            },
        )
        self.assertEqual(blobs, [b'cba', b'text'])

        (header, _), _ = process.call(*scan_call(2, b'abc', method='get_dispatches'))
        self.assertEqual(header['value'], {'plugin_names': ['a'], 'payload_meta_update': {'should_scan': False}})

        path = os.path.join(self.tmpdir(), 'got')
        (header, _), _ = process.call({'type': 'call', 'id': 3, 'method': 'get', 'task': {'results': {'path': path}}})
        self.assertEqual(header, {'type': 'return', 'id': 3, 'value': {'content': {'path': path}}})

        response = {'results': [{}, {}], 'request_meta': {}, 'errors': []}
        (header, _), _ = process.call({'type': 'call', 'id': 4, 'method': 'decorate', 'response': response})
        self.assertEqual(header['value'], {'results': {'n': 2}})
        (header, _), _ = process.call({'type': 'call', 'id': 5, 'method': 'save', 'response': response})
        self.assertEqual(header, {'type': 'return', 'id': 5, 'value': None})

        process.send({'type': 'call', 'id': 6, 'method': 'ingest'})
        messages = [process.recv() for _ in range(5)]
        self.assertEqual(
            messages,
            [
                ({'type': 'put', 'item': {'payload': {'content': {'blob': 0}}}, 'blobs': [2]}, [b'p1']),
                (
                    {
                        'type': 'put',
                        'item': {
                            'request': {
                                'payloads': [{'content': {'blob': 0}}, {'content': {'blob': 1}}],
                                'request_meta': {},
                            }
                        },
                        'blobs': [2, 2],
                    },
                    [b'r1', b'r2'],
                ),
                ({'type': 'put', 'item': {'archiver_task': {'a': {'k': 1}}}}, []),
                ({'type': 'put', 'item': {'payload': {'content': {'blob': 0}}}, 'blobs': [3]}, [b'raw']),
                ({'type': 'return', 'id': 6, 'value': None}, []),
            ],
        )
        self.assertEqual(process.close(), 0)
        stderr = process.stderr_text()
        for text in ('INFO: starting', 'print goes to stderr', 'so does fd 1'):
            self.assertIn(text, stderr)

    def test_file_mode_and_errors(self):
        process, ready = self.sdk_plugin(
            """\
            import stoq_plugin

            class Files(stoq_plugin.Plugin):
                content = 'file'

                def scan(self, payload, request):
                    if payload['content_path'].endswith('bad'):
                        raise ValueError('bad file')
                    if payload['content_path'].endswith('nan'):
                        return {'results': {'x': float('nan')}}
                    with open(payload['content_path'], 'rb') as f:
                        return {'results': {'content_was': payload['content'], 'read': f.read().decode()}}

            stoq_plugin.run(Files)
            """
        )
        self.assertEqual(ready[0]['content'], 'file')
        self.assertEqual(ready[0]['classes'], ['worker'])
        tmp = self.tmpdir()
        for name in ('good', 'bad', 'nan'):
            with open(os.path.join(tmp, name), 'w') as f:
                f.write(name)
        header, _ = scan_call(1, b'')
        header['payload']['content'] = {'path': os.path.join(tmp, 'good')}
        (answer, _), _ = process.call(header)
        self.assertEqual(answer['value'], {'results': {'content_was': None, 'read': 'good'}})
        header['payload']['content'] = {'path': os.path.join(tmp, 'bad')}
        (answer, _), logs = process.call(dict(header, id=2))
        self.assertEqual(answer, {'type': 'raise', 'id': 2, 'error': 'ValueError: bad file'})
        self.assertIn("raise ValueError('bad file')", logs[0]['message'])
        header['payload']['content'] = {'path': os.path.join(tmp, 'nan')}
        (answer, _), _ = process.call(dict(header, id=3))
        self.assertEqual(answer['type'], 'raise')
        self.assertIn('ValueError', answer['error'])
        (answer, _), _ = process.call({'type': 'call', 'id': 4, 'method': 'save', 'response': {}})
        self.assertEqual(answer['type'], 'raise')
        self.assertIn("does not implement 'save'", answer['error'])
        self.assertEqual(process.close(), 0)

    def test_start_failure_is_fatal(self):
        process, ready = self.sdk_plugin(
            """\
            import stoq_plugin

            class Picky(stoq_plugin.Plugin):
                def start(self, hello):
                    if 'needed' not in self.options:
                        raise RuntimeError('option "needed" is required')

                def scan(self, payload, request):
                    return None

            stoq_plugin.run(Picky)
            """
        )
        self.assertEqual(ready[0], {'type': 'fatal', 'error': 'RuntimeError: option "needed" is required'})
        self.assertEqual(process.proc.wait(timeout=10), 1)

    def test_first_message_must_be_hello(self):
        tmp = self.tmpdir()
        with open(os.path.join(tmp, 'plugin.py'), 'w') as f:
            f.write('import stoq_plugin\nstoq_plugin.run(stoq_plugin.Plugin)\n')
        process = PluginProcess([sys.executable, 'plugin.py'], tmp)
        self.addCleanup(process.kill)
        process.send(*scan_call(1, b'x'))
        header, _ = process.recv()
        self.assertEqual(header['type'], 'fatal')
        self.assertEqual(process.proc.wait(timeout=10), 2)


if __name__ == '__main__':
    unittest.main()
