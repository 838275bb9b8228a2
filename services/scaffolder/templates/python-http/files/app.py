"""The HTTP service: Python's standard library only (http.server).

Routes:
  GET /           an HTML page with the service's title and greeting
  GET /healthz    200 "ok" while the service runs (the run contract's health path)
  GET /api/hello  the greeting as JSON; when the API_KEY environment variable
                  is set, only for "Authorization: Bearer <API_KEY>"
  GET /metrics    request counts in Prometheus' text format (when enabled)

Run it with `python3 app.py`; it listens on 0.0.0.0:$PORT (default 8080).
"""

import hmac
import html
import json
import logging
import os
import signal
import string
import sys
import threading
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The template's answers (see .orchestrator-answers.json).
SERVICE_TITLE = "{{{service_title}}}"
GREETING = "{{{greeting}}}"
CACHE_MAX_AGE = {{cache_max_age}}
ENABLE_METRICS = {{#enable_metrics}}True{{/enable_metrics}}{{^enable_metrics}}False{{/enable_metrics}}
LOG_LEVEL = "{{log_level}}"

DEFAULT_PORT = 8080

log = logging.getLogger("service")


# The page; string.Template's $names, so that CSS braces need no escaping.
INDEX_PAGE = string.Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 3rem auto; max-width: 40rem; padding: 0 1rem; }
  h1 { margin-bottom: 0.5rem; }
</style>
</head>
<body>
<h1>$title</h1>
<p class="greeting">$greeting</p>
</body>
</html>
""")


def index_page() -> bytes:
    return INDEX_PAGE.substitute(
        title=html.escape(SERVICE_TITLE), greeting=html.escape(GREETING)).encode("utf-8")


class Service(ThreadingHTTPServer):
    """The HTTP server with what its handlers share."""

    daemon_threads = True

    def __init__(self, address, api_key=None):
        super().__init__(address, Handler)
        self.api_key = api_key or None
        self.requests = Counter()
        self.requests_lock = threading.Lock()

    def count(self, path: str, status: int) -> None:
        with self.requests_lock:
            self.requests[(path, status)] += 1


class Handler(BaseHTTPRequestHandler):
    server_version = "service/1"
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.respond(head=False)

    def do_HEAD(self):
        self.respond(head=True)

    def respond(self, head: bool) -> None:
        path = self.path.split("?", 1)[0]
        headers = {}
        if path == "/":
            status, body, kind = HTTPStatus.OK, index_page(), "text/html; charset=utf-8"
            headers["Cache-Control"] = f"max-age={CACHE_MAX_AGE}"
        elif path == "/healthz":
            status, body, kind = HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8"
        elif path == "/api/hello":
            if self.authorized():
                status = HTTPStatus.OK
                body = json.dumps({"title": SERVICE_TITLE, "greeting": GREETING}).encode("utf-8")
            else:
                status, body = HTTPStatus.UNAUTHORIZED, b'{"error": "unauthorized"}'
                headers["WWW-Authenticate"] = "Bearer"
            kind = "application/json"
        elif path == "/metrics" and ENABLE_METRICS:
            status, body, kind = HTTPStatus.OK, self.metrics(), "text/plain; version=0.0.4"
        else:
            status, body, kind = HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8"
        # Only the known routes are counted, so that any path cannot grow the table.
        self.server.count(path if status != HTTPStatus.NOT_FOUND else "other", int(status))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def authorized(self) -> bool:
        key = self.server.api_key
        if key is None:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode("utf-8"), f"Bearer {key}".encode("utf-8"))

    def metrics(self) -> bytes:
        lines = [
            "# HELP http_requests_total HTTP requests served, by path and status.",
            "# TYPE http_requests_total counter",
        ]
        with self.server.requests_lock:
            counts = sorted(self.server.requests.items())
        for (path, status), n in counts:
            lines.append('http_requests_total{path="%s",status="%d"} %d' % (path, status, n))
        return ("\n".join(lines) + "\n").encode("utf-8")

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        log.info("%s %s", self.address_string(), format % args)


def port_from_environment(environ=os.environ) -> int:
    """$PORT as a TCP port (DEFAULT_PORT when unset); ValueError otherwise."""
    value = environ.get("PORT", "").strip()
    if not value:
        return DEFAULT_PORT
    port = int(value)
    if not 1 <= port <= 65535:
        raise ValueError(f"PORT must be between 1 and 65535, not {port}")
    return port


def main() -> int:
    logging.basicConfig(
        level=LOG_LEVEL.upper(), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        port = port_from_environment()
    except ValueError as e:
        log.error("bad PORT: %s", e)
        return 2
    server = Service(("0.0.0.0", port), api_key=os.environ.get("API_KEY"))

    # Stop on SIGTERM (a container's stop) and SIGINT: finish, then exit 0.
    def stop(signum, _frame):
        log.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("%s listening on port %d (API key %s)", SERVICE_TITLE, port,
             "required" if server.api_key else "not set")
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
