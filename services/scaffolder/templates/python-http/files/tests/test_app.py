"""The service's routes, served on a free loopback port.

Run from the project's root: python3 -m unittest discover -s tests -v
"""

import html
import json
import threading
import unittest
import urllib.error
import urllib.request

import app


class ServiceTest(unittest.TestCase):
    api_key = None

    def setUp(self):
        self.server = app.Service(("127.0.0.1", 0), api_key=self.api_key)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def get(self, path, headers=None):
        """(status, headers, body) of GET path; errors are answers too."""
        request = urllib.request.Request(self.base + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()


class RoutesTest(ServiceTest):
    def test_index_shows_the_title_and_greeting(self):
        status, headers, body = self.get("/")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        page = body.decode("utf-8")
        self.assertIn("<title>%s</title>" % html.escape(app.SERVICE_TITLE), page)
        self.assertIn(html.escape(app.GREETING), page)
        self.assertEqual(headers["Cache-Control"], "max-age=%d" % app.CACHE_MAX_AGE)

    def test_healthz_answers_ok(self):
        status, _, body = self.get("/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))

    def test_hello_without_an_api_key_is_open(self):
        status, _, body = self.get("/api/hello")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"title": app.SERVICE_TITLE, "greeting": app.GREETING})

    def test_unknown_path_is_not_found(self):
        status, _, _ = self.get("/no-such-page")
        self.assertEqual(status, 404)

    @unittest.skipUnless(app.ENABLE_METRICS, "metrics are not enabled (enable_metrics)")
    def test_metrics_count_requests(self):
        self.get("/healthz")
        self.get("/healthz")
        status, _, body = self.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn('http_requests_total{path="/healthz",status="200"} 2', body.decode("utf-8"))

    @unittest.skipIf(app.ENABLE_METRICS, "metrics are enabled (enable_metrics)")
    def test_metrics_are_off(self):
        status, _, _ = self.get("/metrics")
        self.assertEqual(status, 404)


class ApiKeyTest(ServiceTest):
    api_key = "test-key-0123456789"

    def test_hello_needs_the_key(self):
        status, headers, _ = self.get("/api/hello")
        self.assertEqual(status, 401)
        self.assertEqual(headers["WWW-Authenticate"], "Bearer")
        status, _, _ = self.get("/api/hello", {"Authorization": "Bearer wrong"})
        self.assertEqual(status, 401)
        status, _, _ = self.get("/api/hello", {"Authorization": "Bearer " + self.api_key})
        self.assertEqual(status, 200)

    def test_health_and_page_need_no_key(self):
        self.assertEqual(self.get("/healthz")[0], 200)
        self.assertEqual(self.get("/")[0], 200)


class PortTest(unittest.TestCase):
    def test_default_and_explicit_port(self):
        self.assertEqual(app.port_from_environment({}), app.DEFAULT_PORT)
        self.assertEqual(app.port_from_environment({"PORT": "9090"}), 9090)

    def test_bad_port_is_refused(self):
        for value in ("http", "0", "70000"):
            with self.assertRaises(ValueError, msg=value):
                app.port_from_environment({"PORT": value})


if __name__ == "__main__":
    unittest.main()
