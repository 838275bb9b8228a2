"""What every fake API server here shares: ids, a JSON-answering request
handler that logs each request body, and the command line
(--port PORT, 0 picks one and prints it; --log FILE)."""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
_COUNTER = [0]


def next_id(prefix):
    with LOCK:
        _COUNTER[0] += 1
        return "%s_%04d" % (prefix, _COUNTER[0])


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    log_file = None

    def log_message(self, *args):
        pass

    def _json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self):
        """The request's body, as bytes."""
        return self.rfile.read(int(self.headers.get("content-length", 0)))

    def _read_json(self):
        """The request's JSON body, or None after answering 400."""
        try:
            return json.loads(self._read_body() or b"{}")
        except ValueError:
            self._json(400, {"type": "error", "error": {"type": "invalid_request_error",
                                                        "message": "body is not JSON"}})
            return None

    def _log(self, body):
        if JsonHandler.log_file:
            with LOCK, open(JsonHandler.log_file, "a") as f:
                f.write(json.dumps({"path": self.path, "body": body}) + "\n")

    def _start_events(self):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _event(self, name, data):
        self.wfile.write(("event: %s\ndata: %s\n\n" % (name, json.dumps(data))).encode())
        self.wfile.flush()


def serve(handler, add_arguments=None):
    """Serve handler; add_arguments(parser), if given, adds the fake's own
    options, whose parsed values the handler finds in handler.options."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--log")
    if add_arguments:
        add_arguments(ap)
    args = ap.parse_args()
    JsonHandler.log_file = args.log
    handler.options = args
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
