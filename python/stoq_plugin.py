"""stoq_plugin: write stoq plugins in Python (external plugin protocol v1).

One file, standard library only, Python 3.8+. The protocol is described in
docs/PLUGIN_PROTOCOL.md; this module does the framing so that a plugin only
deals with Python values and bytes::

    import stoq_plugin

    class Upper(stoq_plugin.Plugin):
        def scan(self, payload, request):
            data = payload['content']                      # bytes
            return {
                'results': {'upper': data.isupper()},
                'extracted': [{'content': data.upper(),   # bytes again
                               'payload_meta': {'extra_data': {'filename': 'upper.bin'}}}],
            }

    if __name__ == '__main__':
        stoq_plugin.run(Upper)

Methods a plugin may define (each may also be ``async def``):

=================  =========================  ================================
method             arguments                  return value
=================  =========================  ================================
``scan``           ``payload, request``       None or ``{"results", "extracted",
                                              "errors", "dispatch_to",
                                              "payload_meta_update"}``
``get_dispatches`` ``payload, request``       None or ``{"plugin_names",
                                              "meta", "errors",
                                              "payload_meta_update"}``
``archive``        ``payload, request``       None or ``{"results", "errors"}``
``get``            ``task``                   None or a new payload
``decorate``       ``response``               None or ``{"results", "errors"}``
``save``           ``response``               None
``ingest``         none                       None; items go out with
                                              ``self.put(...)``
=================  =========================  ================================

``payload`` is the protocol's payload object with ``content`` already
resolved to ``bytes`` (``payload['content_path']`` is None). In file mode (``content = 'file'`` on the class) the
content is not read: ``payload['content_path']`` names the file and
``payload['content']`` is None. A new payload (extracted, returned by
``get`` or put by ``ingest``) is a dict with ``content`` (bytes or str) and
optionally ``payload_meta``; ``content_path`` instead of ``content`` hands
the host a file to read (the plugin owns the file).

Exceptions raised by a method become the call's error as
``"<ExceptionType>: <message>"``; the traceback goes to the host as a debug
``log`` message. ``logging`` records are sent to the host as ``log``
messages while a call runs, and written to stderr otherwise.

The process's own stdin/stdout are taken over by :func:`run`: the protocol
uses private copies of the descriptors, file descriptor 1 is pointed at
stderr and 0 at /dev/null, so ``print()``, ``os.write(1, ...)`` and child
processes can never corrupt or steal protocol messages.
"""

import asyncio
import datetime
import inspect
import json
import logging
import os
import sys
import threading
import traceback

__all__ = ['PROTOCOL', 'Channel', 'Connection', 'Plugin', 'ProtocolError', 'describe_exception', 'run']

PROTOCOL = 1

# Python logging levels -> protocol levels.
_LEVELS = ((logging.ERROR, 'error'), (logging.WARNING, 'warning'), (logging.INFO, 'info'))

# method -> plugin class it belongs to (for the ``ready`` answer).
_METHOD_CLASSES = (
    ('scan', 'worker'),
    ('get_dispatches', 'dispatcher'),
    ('archive', 'archiver'),
    ('get', 'archiver'),
    ('decorate', 'decorator'),
    ('save', 'connector'),
    ('ingest', 'provider'),
)
_METHODS = frozenset(m for m, _ in _METHOD_CLASSES)


class ProtocolError(Exception):
    """The peer sent something that is not a protocol message."""


def json_default(o):
    """Fallbacks for values json cannot encode (same rules as stoq v3's
    ``helpers.dumps``): bytes as UTF-8 text, datetimes as ``str``, sets as
    lists, other objects as their attributes."""
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o).decode('utf-8', errors='replace')
    if isinstance(o, datetime.datetime):
        return str(o)
    if isinstance(o, (set, frozenset)):
        return list(o)
    try:
        return vars(o)
    except TypeError:
        raise TypeError(f'Object of type {type(o).__name__} is not JSON serializable') from None


def describe_exception(exc):
    """``"<Type>: <message>"``; the type is qualified with its module unless
    it is a built-in (``Exception: boom``, ``stoq.exceptions.StoqException:
    boom``), as the reference's error records name it."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ not in ('builtins', '__main__'):
        name = f'{cls.__module__}.{name}'
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the error
        text = '<unprintable>'
    return f'{name}: {text}'


# Files whose frames are left out of the tracebacks sent to the host (the
# SDK's own machinery); stoq_host adds itself.
INTERNAL_FILES = {os.path.abspath(__file__), os.path.dirname(os.path.abspath(asyncio.__file__))}


def plugin_traceback(exc):
    """The traceback of ``exc`` without the SDK's and asyncio's frames."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if os.path.abspath(frame.filename) not in INTERNAL_FILES
        and os.path.dirname(os.path.abspath(frame.filename)) not in INTERNAL_FILES
    ]
    lines = ['Traceback (most recent call last):\n']
    lines += traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return ''.join(lines).rstrip()


def _read_exact(stream, n):
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            raise ProtocolError('end of input inside a blob')
        chunks.append(chunk)
        n -= len(chunk)
    return b''.join(chunks)


class Channel:
    """Framing only: a message is a JSON header line, then the raw bytes of
    the blobs its ``"blobs"`` field counts. Thread-safe writes."""

    def __init__(self, rfile, wfile):
        self.rfile = rfile  # binary, buffered
        self.wfile = wfile  # binary, buffered; flushed after every message
        self.lock = threading.RLock()
        self.json_default = json_default

    def read(self):
        """The next message as ``(header, [blob bytes...])``, or None at end
        of input."""
        line = self.rfile.readline()
        if not line or not line.endswith(b'\n'):
            return None  # end of input (a truncated last line counts as EOF)
        try:
            header = json.loads(line)
        except ValueError as e:
            raise ProtocolError(f'header is not JSON: {e}') from None
        if not isinstance(header, dict):
            raise ProtocolError('header is not a JSON object')
        sizes = header.get('blobs') or []
        if not isinstance(sizes, list) or not all(isinstance(n, int) and n >= 0 for n in sizes):
            raise ProtocolError('"blobs" is not a list of byte counts')
        return header, [_read_exact(self.rfile, n) for n in sizes]

    def encode(self, header, blobs=()):
        """The header line of a message (bytes). Raises (ValueError,
        TypeError) if the header cannot be encoded; nothing is written then."""
        if blobs:
            header = dict(header, blobs=[len(b) for b in blobs])
        text = json.dumps(
            header,
            ensure_ascii=False,
            allow_nan=False,  # NaN/Infinity are not JSON
            separators=(',', ':'),
            default=self.json_default,
        )
        # A str may hold lone surrogates (undecodable file names); they are
        # replaced so the line is always valid UTF-8.
        return text.encode('utf-8', errors='replace') + b'\n'

    def write(self, header, blobs=()):
        line = self.encode(header, blobs)
        with self.lock:
            self.wfile.write(line)
            for blob in blobs:
                self.wfile.write(blob)
            self.wfile.flush()


def take_over_stdio():
    """Move the protocol off fds 0/1 and return ``(rfile, wfile)`` for it.

    fd 1 becomes a copy of stderr and fd 0 reads /dev/null, so stray output
    of plugin code (print, os.write(1, ...), child processes) lands on
    stderr, which the host copies to its log, and children cannot consume
    protocol input. The private descriptors are not inherited by children.
    """
    sys.stdout.flush()
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr
    sys.stdin = open(os.devnull, 'r')
    return os.fdopen(proto_in, 'rb'), os.fdopen(proto_out, 'wb')


class LogHandler(logging.Handler):
    """Sends logging records to the host (``log`` messages) while a call is
    in progress; at other times writes them to stderr."""

    def __init__(self, connection):
        super().__init__()
        self.connection = connection
        self.setFormatter(logging.Formatter('%(message)s'))

    def emit(self, record):
        try:
            self.connection.log(record.levelno, self.format(record))
        except Exception:
            self.handleError(record)


def _pack_new_payload(item, blobs):
    """A new payload as the plugin gave it -> the protocol's form, content
    moved into ``blobs``."""
    if not isinstance(item, dict):
        raise TypeError(f'a new payload must be a dict, not {type(item).__name__}')
    out = dict(item)
    content = out.get('content')
    if isinstance(content, str):
        content = content.encode('utf-8')
    if isinstance(content, (bytes, bytearray, memoryview)):
        out['content'] = {'blob': len(blobs)}
        blobs.append(bytes(content))
    elif content is None and 'content_path' in out:
        out['content'] = {'path': os.fspath(out['content_path'])}
    elif not isinstance(content, dict):  # an explicit {"blob"}/{"path"} reference passes
        raise TypeError(f'payload content must be bytes, not {type(content).__name__}')
    out.pop('content_path', None)
    return out


def _pack_put_item(item, blobs):
    item = dict(item)
    if 'payload' in item:
        item['payload'] = _pack_new_payload(item['payload'], blobs)
    if 'request' in item:
        request = dict(item['request'])
        request['payloads'] = [_pack_new_payload(p, blobs) for p in request.get('payloads') or []]
        item['request'] = request
    return item


class Plugin:
    """Base class of SDK plugins. Override the methods you implement (see
    the module documentation) and, if needed, :meth:`start`.

    Class attributes:

    * ``classes``: the plugin classes announced in ``ready``; by default
      derived from the methods the subclass defines.
    * ``content``: ``'blob'`` (default) or ``'file'``.
    * ``required_workers``: names of workers that must run first (workers).
    """

    classes = None
    content = 'blob'
    required_workers = ()

    # Set by the connection before start():
    connection = None
    hello = None
    plugin_name = None
    options = None

    def start(self, hello):
        """Called once with the ``hello`` message, before any call. Raise to
        refuse to start (the host gets a ``fatal`` message)."""

    def plugin_classes(self):
        if self.classes is not None:
            return list(self.classes)
        found = []
        for method, cls in _METHOD_CLASSES:
            if callable(getattr(self, method, None)) and cls not in found:
                found.append(cls)
        return found

    def put(self, item, blobs=None):
        """Send one item from ``ingest``: ``{"payload": new payload}``,
        ``{"request": {"payloads": [...], "request_meta": {...}}}`` or
        ``{"archiver_task": {archiver: task}}``. Contents given as bytes are
        sent as blobs. If ``blobs`` is given, the item is sent as is (its
        content references must already point into ``blobs``)."""
        self.connection.put(item, blobs)

    def log(self, level, message):
        """Log ``message`` on the host (``level``: debug, info, warning,
        error, or a ``logging`` level number)."""
        self.connection.log(level, message)


class Connection:
    """The message loop: serves one plugin object over a :class:`Channel`."""

    def __init__(self, channel):
        self.channel = channel
        self.in_call = False  # log messages are only sent during a call
        self._loop = None

    # -- sending --------------------------------------------------------
    def send(self, header, blobs=()):
        self.channel.write(header, blobs)

    def put(self, item, blobs=None):
        if blobs is None:
            blobs = []
            item = _pack_put_item(item, blobs)
        self.send({'type': 'put', 'item': item}, blobs)

    def log(self, level, message):
        if isinstance(level, int):
            level = next((name for no, name in _LEVELS if level >= no), 'debug')
        with self.channel.lock:
            if self.in_call:
                self.send({'type': 'log', 'level': level, 'message': str(message)})
                return
        sys.stderr.write(f'{level.upper()}: {message}\n')
        sys.stderr.flush()

    # -- the loop -------------------------------------------------------
    def run_awaitable(self, value):
        """Methods may be ``async``: their coroutine runs to completion on
        one event loop kept for the life of the process."""
        if not inspect.isawaitable(value):
            return value
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        return self._loop.run_until_complete(value)

    def serve(self, plugin):
        """Run until end of input. Returns the process exit status."""
        try:
            return self._serve(plugin)
        except BrokenPipeError:
            return 0  # the host went away
        except ProtocolError as e:
            sys.stderr.write(f'stoq_plugin: protocol error: {e}\n')
            return 2

    def _serve(self, plugin):
        message = self.channel.read()
        if message is None:
            return 0
        hello, _ = message
        if hello.get('type') != 'hello':
            self.send({'type': 'fatal', 'error': f'expected a hello message, got {hello.get("type")!r}'})
            return 2
        if hello.get('protocol') != PROTOCOL:
            self.send(
                {
                    'type': 'fatal',
                    'error': f'protocol version {hello.get("protocol")} is not supported '
                    f'(this plugin speaks version {PROTOCOL})',
                }
            )
            return 2
        plugin.connection = self
        plugin.hello = hello
        plugin.plugin_name = hello.get('plugin_name')
        plugin.options = dict(hello.get('options') or {})
        try:
            self.run_awaitable(plugin.start(hello))
            ready = {
                'type': 'ready',
                'protocol': PROTOCOL,
                'classes': plugin.plugin_classes(),
                'required_workers': list(plugin.required_workers or ()),
                'content': plugin.content,
            }
        except Exception as e:
            traceback.print_exc()
            self.send({'type': 'fatal', 'error': describe_exception(e)})
            return 1
        self.send(ready)

        while True:
            message = self.channel.read()
            if message is None:
                return 0
            header, blobs = message
            if header.get('type') != 'call':
                sys.stderr.write(f'stoq_plugin: ignoring a {header.get("type")!r} message\n')
                continue
            self._call(plugin, header, blobs)

    def _call(self, plugin, header, blobs):
        call_id = header.get('id')
        with self.channel.lock:
            self.in_call = True
        try:
            try:
                value, out_blobs = self._dispatch(plugin, header, blobs)
                answer = {'type': 'return', 'id': call_id, 'value': value}
                # Encode now: a value that is not JSON becomes a raise.
                self.channel.encode(answer, out_blobs)
            except (Exception, asyncio.CancelledError) as e:
                self.log('debug', plugin_traceback(e))
                answer, out_blobs = {'type': 'raise', 'id': call_id, 'error': describe_exception(e)}, []
            with self.channel.lock:
                self.in_call = False
                self.send(answer, out_blobs)
        finally:
            with self.channel.lock:
                self.in_call = False

    def _content(self, ref, blobs, plugin):
        """Resolve a ``{"blob": i}``/``{"path": p}`` reference: returns
        ``(bytes or None, path or None)``."""
        if not isinstance(ref, dict):
            raise ProtocolError(f'bad content reference {ref!r}')
        if 'blob' in ref:
            i = ref['blob']
            if not isinstance(i, int) or not 0 <= i < len(blobs):
                raise ProtocolError(f'blob reference {i!r} out of range')
            return blobs[i], None
        if 'path' in ref:
            path = ref['path']
            if plugin.content == 'file':
                return None, path
            with open(path, 'rb') as f:
                return f.read(), path
        raise ProtocolError(f'bad content reference {ref!r}')

    def _dispatch(self, plugin, header, blobs):
        method = header.get('method')
        if method not in _METHODS:
            raise NotImplementedError(f'unknown method {method!r}')
        func = getattr(plugin, method, None)
        if not callable(func):
            raise NotImplementedError(f'this plugin does not implement {method!r}')

        if method in ('scan', 'get_dispatches', 'archive'):
            payload = dict(header.get('payload') or {})
            payload['content'], payload['content_path'] = self._content(payload.get('content'), blobs, plugin)
            args = (payload, header.get('request') or {})
        elif method == 'get':
            args = (header.get('task') or {},)
        elif method in ('decorate', 'save'):
            args = (header.get('response') or {},)
        else:  # ingest
            args = ()

        value = self.run_awaitable(func(*args))

        out_blobs = []
        if value is None:
            return None, out_blobs
        if method == 'scan' and isinstance(value, dict) and value.get('extracted'):
            value = dict(value)
            value['extracted'] = [_pack_new_payload(p, out_blobs) for p in value['extracted']]
        elif method == 'get':
            value = _pack_new_payload(value, out_blobs)
        elif method in ('save', 'ingest'):
            value = None  # these answer null whatever the method returned
        return value, out_blobs


def install_logging(connection, level=None):
    """Route ``logging`` through the protocol: the root logger's handlers
    are replaced by a :class:`LogHandler` (a handler set up earlier could
    only duplicate the messages). The level is INFO unless
    ``$STOQ_PLUGIN_LOG_LEVEL`` (or ``level``) says otherwise."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(LogHandler(connection))
    level = level or os.environ.get('STOQ_PLUGIN_LOG_LEVEL', 'INFO')
    try:
        root.setLevel(level.upper() if isinstance(level, str) else level)
    except (ValueError, TypeError):
        root.setLevel(logging.INFO)


def run(plugin):
    """Serve ``plugin`` (a :class:`Plugin` subclass, or an instance) on this
    process's stdin/stdout until the host closes stdin, then exit."""
    rfile, wfile = take_over_stdio()
    connection = Connection(Channel(rfile, wfile))
    install_logging(connection)
    if isinstance(plugin, type):
        plugin = plugin()
    status = connection.serve(plugin)
    logging.shutdown()
    sys.exit(status)
