#!/usr/bin/env python3
"""A small Elasticsearch/OpenSearch-compatible test server (standard library
only), for the es-search connector's tests. It is NOT a search engine: it
keeps documents in memory and speaks the part of the REST API the connector
uses, plus a fault-injection endpoint.

No real Elasticsearch or OpenSearch installs from the registries this project
can reach (crates.io, PyPI, Debian, npm), so this stands in for one.

API
  GET  /                          cluster info (an OpenSearch-like banner)
  POST /_bulk, /<index>/_bulk     NDJSON: index / create / delete actions;
                                  per-item results like the real thing
  GET  /<index>/_doc/<id>         one document ({found, _source})
  GET  /<index>/_count            {"count": n}
  GET  /_cat/indices?format=json  [{"index", "docs.count"}]
  DELETE /<index>                 drop an index
  POST /_test/fail                {"index": I or "*", "count": N, "status": S,
                                   "mode": "request" | "item"}: the next N
                                  bulk requests touching I fail with HTTP S
                                  (mode request), or each of their items for
                                  I fails with status S (mode item)
  POST /_test/reject              {"index": I, "field": F}: documents with a
                                  top-level field F are rejected with 400
                                  (mapper_parsing_exception), for good
  GET  /_test/stats               counters: bulk requests, items, failures
                                  injected, documents stored

Usage: search_server.py PORT  (binds 127.0.0.1 only)
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

LOCK = threading.Lock()
INDICES = {}  # index -> {id: source}
FAULTS = []  # [{"index", "count", "status", "mode"}]
REJECTS = []  # [{"index", "field"}]
STATS = {"bulk_requests": 0, "items": 0, "failed_requests": 0, "failed_items": 0,
         "rejected_items": 0}


def take_fault(indices, mode):
    """Use up one fault that matches one of `indices`, if any."""
    for f in FAULTS:
        if f["mode"] == mode and f["count"] > 0 and (f["index"] == "*" or f["index"] in indices):
            f["count"] -= 1
            return f
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        path = urlparse(self.path).path.strip("/").split("/")
        with LOCK:
            if path == [""]:
                return self.reply(200, {"name": "stoq-test", "cluster_name": "stoq-test",
                                        "version": {"distribution": "opensearch",
                                                    "number": "2.11.0"},
                                        "tagline": "stoq test stand-in"})
            if path == ["_test", "stats"]:
                docs = sum(len(d) for d in INDICES.values())
                return self.reply(200, dict(STATS, documents=docs))
            if path[:2] == ["_cat", "indices"]:
                return self.reply(200, [{"index": i, "docs.count": str(len(d))}
                                        for i, d in sorted(INDICES.items())])
            if len(path) == 3 and path[1] == "_doc":
                src = INDICES.get(path[0], {}).get(path[2])
                if src is None:
                    return self.reply(404, {"_index": path[0], "_id": path[2], "found": False})
                return self.reply(200, {"_index": path[0], "_id": path[2], "found": True,
                                        "_source": src})
            if len(path) == 2 and path[1] == "_count":
                if path[0] not in INDICES:
                    return self.reply(404, {"error": {"type": "index_not_found_exception"},
                                            "status": 404})
                return self.reply(200, {"count": len(INDICES[path[0]])})
        self.reply(404, {"error": "not found", "status": 404})

    def do_DELETE(self):
        path = urlparse(self.path).path.strip("/").split("/")
        with LOCK:
            if len(path) == 1 and path[0] in INDICES:
                del INDICES[path[0]]
                return self.reply(200, {"acknowledged": True})
        self.reply(404, {"error": {"type": "index_not_found_exception"}, "status": 404})

    def do_PUT(self):
        self.do_POST()

    def do_POST(self):
        path = urlparse(self.path).path.strip("/").split("/")
        raw = self.body()
        if path == ["_test", "fail"]:
            spec = json.loads(raw or b"{}")
            with LOCK:
                FAULTS.append({"index": spec.get("index", "*"), "count": int(spec.get("count", 1)),
                               "status": int(spec.get("status", 503)),
                               "mode": spec.get("mode", "request")})
            return self.reply(200, {"acknowledged": True})
        if path == ["_test", "reject"]:
            spec = json.loads(raw or b"{}")
            with LOCK:
                REJECTS.append({"index": spec["index"], "field": spec["field"]})
            return self.reply(200, {"acknowledged": True})
        if path[-1] != "_bulk" or len(path) > 2:
            return self.reply(404, {"error": "not found", "status": 404})
        default_index = path[0] if len(path) == 2 else None
        lines = [l for l in raw.split(b"\n") if l.strip()]
        ops = []
        i = 0
        try:
            while i < len(lines):
                action = json.loads(lines[i])
                (kind, meta), = action.items()
                index = meta.get("_index", default_index)
                if kind in ("index", "create"):
                    source = json.loads(lines[i + 1])
                    i += 2
                elif kind == "delete":
                    source = None
                    i += 1
                else:
                    raise ValueError("unknown action " + kind)
                if not index:
                    raise ValueError("no index")
                ops.append((kind, index, meta.get("_id"), source))
        except (ValueError, IndexError, KeyError) as e:
            return self.reply(400, {"error": {"type": "illegal_argument_exception",
                                              "reason": str(e)}, "status": 400})
        with LOCK:
            STATS["bulk_requests"] += 1
            STATS["items"] += len(ops)
            touched = {op[1] for op in ops}
            fault = take_fault(touched, "request")
            if fault:
                STATS["failed_requests"] += 1
                status = fault["status"]
                kind = "es_rejected_execution_exception" if status == 429 else "unavailable"
                return self.reply(status, {"error": {"type": kind, "reason": "injected fault"},
                                           "status": status})
            items = []
            errors = False
            item_faults = {}
            for kind, index, doc_id, source in ops:
                if index not in item_faults:
                    item_faults[index] = take_fault({index}, "item")
                f = item_faults[index]
                if f is not None:
                    STATS["failed_items"] += 1
                    errors = True
                    items.append({kind: {"_index": index, "_id": doc_id, "status": f["status"],
                                         "error": {"type": "es_rejected_execution_exception",
                                                   "reason": "injected item fault"}}})
                    continue
                rejected = any(r["index"] == index and isinstance(source, dict)
                               and r["field"] in source for r in REJECTS)
                if rejected:
                    STATS["rejected_items"] += 1
                    errors = True
                    items.append({kind: {"_index": index, "_id": doc_id, "status": 400,
                                         "error": {"type": "mapper_parsing_exception",
                                                   "reason": "injected mapping error"}}})
                    continue
                docs = INDICES.setdefault(index, {})
                if kind == "delete":
                    existed = docs.pop(doc_id, None) is not None
                    items.append({kind: {"_index": index, "_id": doc_id,
                                         "result": "deleted" if existed else "not_found",
                                         "status": 200 if existed else 404}})
                    continue
                if doc_id is None:
                    doc_id = "auto-%d" % (len(docs) + 1)
                if kind == "create" and doc_id in docs:
                    errors = True
                    items.append({kind: {"_index": index, "_id": doc_id, "status": 409,
                                         "error": {"type": "version_conflict_engine_exception"}}})
                    continue
                result = "updated" if doc_id in docs else "created"
                docs[doc_id] = source
                items.append({kind: {"_index": index, "_id": doc_id, "result": result,
                                     "status": 201 if result == "created" else 200}})
        self.reply(200, {"took": 1, "errors": errors, "items": items})


def main():
    port = int(sys.argv[1])
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
