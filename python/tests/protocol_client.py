"""A minimal host side of the external plugin protocol, for tests: starts a
plugin process and speaks to it (docs/PLUGIN_PROTOCOL.md)."""

import json
import os
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_DIR = os.path.join(ROOT, 'python')
V3_DIR = os.path.join(ROOT, 'testdata', 'plugins', 'v3')
STOQ_HOST = os.path.join(PYTHON_DIR, 'stoq_host.py')


def payload_results(size, payload_id='11111111-1111-4111-8111-111111111111', extra_data=None):
    """PayloadResults JSON as stoq sends it."""
    return {
        'size': size,
        'payload_id': payload_id,
        'payload_meta': {
            'should_archive': True,
            'should_scan': True,
            'extra_data': extra_data or {},
            'dispatch_to': [],
        },
        'plugins_run': {'workers': [], 'archivers': []},
        'extracted_from': [],
        'extracted_by': [],
        'workers': {},
        'archivers': {},
    }


def scan_call(call_id, content, method='scan', others=(), **results_kw):
    """A scan-like call: payload (content as blob 0) and request holding it
    (plus ``others``, PayloadResults of other payloads)."""
    results = payload_results(len(content), **results_kw)
    header = {
        'type': 'call',
        'id': call_id,
        'method': method,
        'payload': {'content': {'blob': 0}, 'dispatch_meta': {}, 'results': results},
        'request': {
            'results': [results, *others],
            'request_meta': {'archive_payloads': True, 'source': None, 'extra_data': {}},
            'errors': [],
        },
    }
    return header, [content]


class PluginProcess:
    def __init__(self, argv, cwd, env=None):
        full_env = dict(os.environ)
        full_env['PYTHONPATH'] = PYTHON_DIR + os.pathsep + full_env.get('PYTHONPATH', '')
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.stderr_lines = []
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()

    @classmethod
    def v3(cls, name, python=sys.executable, plugin_dir=None, env=None):
        plugin_dir = plugin_dir or os.path.join(V3_DIR, name)
        argv = [
            python,
            '-u',
            STOQ_HOST,
            os.path.join(plugin_dir, f'{name}.py'),
            os.path.join(plugin_dir, f'{name}.stoq'),
        ]
        return cls(argv, cwd=plugin_dir, env=env)

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode('utf-8', 'replace').rstrip('\n'))

    def stderr_text(self):
        self._stderr_thread.join(timeout=5)
        return '\n'.join(self.stderr_lines)

    def send(self, header, blobs=()):
        if blobs:
            header = dict(header, blobs=[len(b) for b in blobs])
        self.proc.stdin.write(json.dumps(header).encode() + b'\n')
        for blob in blobs:
            self.proc.stdin.write(blob)
        self.proc.stdin.flush()

    def recv(self):
        """``(header, blobs)``, or None at end of output."""
        line = self.proc.stdout.readline()
        if not line:
            return None
        header = json.loads(line)
        blobs = [self.proc.stdout.read(n) for n in header.get('blobs') or []]
        return header, blobs

    def recv_answer(self):
        """The next non-log message, and the log messages before it."""
        logs = []
        while True:
            message = self.recv()
            if message is None or message[0].get('type') != 'log':
                return message, logs
            logs.append(message[0])

    def hello(self, name, options=None, classes=(), plugin_dir=''):
        self.send(
            {
                'type': 'hello',
                'protocol': 1,
                'plugin_name': name,
                'classes': list(classes),
                'options': options or {},
                'plugin_dir': plugin_dir,
                'stoq_version': '3.0.1',
            }
        )
        return self.recv_answer()[0]

    def call(self, header, blobs=()):
        self.send(header, blobs)
        return self.recv_answer()

    def close(self, timeout=10):
        """Close stdin (EOF) and return the exit status."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._close_pipes()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_pipes()

    def _close_pipes(self):
        self._stderr_thread.join(timeout=5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                pipe.close()
            except OSError:  # e.g. a broken pipe while flushing stdin
                pass
