'use strict';
// The HTTP service: Node.js's standard library only (the http module).
//
// Routes:
//   GET /           an HTML page with the service's title and greeting
//   GET /healthz    200 "ok" while the service runs (the run contract's health path)
//   GET /api/hello  the greeting as JSON; when the API_KEY environment variable
//                   is set, only for "Authorization: Bearer <API_KEY>"
//   GET /metrics    request counts in Prometheus' text format (when enabled)
//
// Run it with `node server.js`; it listens on 0.0.0.0:$PORT (default 8080).

const crypto = require('node:crypto');
const http = require('node:http');

// The template's answers (see .orchestrator-answers.json).
const SERVICE_TITLE = "{{{service_title}}}";
const GREETING = "{{{greeting}}}";
const CACHE_MAX_AGE = {{cache_max_age}};
const ENABLE_METRICS = {{#enable_metrics}}true{{/enable_metrics}}{{^enable_metrics}}false{{/enable_metrics}};
const LOG_LEVEL = "{{log_level}}";

const DEFAULT_PORT = 8080;

const LEVELS = ['debug', 'info', 'warning', 'error'];
function logAt(level, message) {
  if (LEVELS.indexOf(level) >= LEVELS.indexOf(LOG_LEVEL)) {
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} ${message}\n`);
  }
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[c]);
}

function indexPage() {
  const title = escapeHtml(SERVICE_TITLE);
  const greeting = escapeHtml(GREETING);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 3rem auto; max-width: 40rem; padding: 0 1rem; }
  h1 { margin-bottom: 0.5rem; }
</style>
</head>
<body>
<h1>${title}</h1>
<p class="greeting">${greeting}</p>
</body>
</html>
`;
}

// Constant-time comparison of the Authorization header with the key.
function authorized(apiKey, header) {
  if (!apiKey) return true;
  const given = Buffer.from(header || '', 'utf8');
  const wanted = Buffer.from(`Bearer ${apiKey}`, 'utf8');
  return given.length === wanted.length && crypto.timingSafeEqual(given, wanted);
}

// The service: an http.Server (not yet listening). options.apiKey protects
// /api/hello when set.
function createServer(options = {}) {
  const apiKey = options.apiKey || null;
  const requests = new Map(); // "path status" -> count

  function metrics() {
    const lines = [
      '# HELP http_requests_total HTTP requests served, by path and status.',
      '# TYPE http_requests_total counter',
    ];
    for (const key of [...requests.keys()].sort()) {
      const [path, status] = key.split(' ');
      lines.push(`http_requests_total{path="${path}",status="${status}"} ${requests.get(key)}`);
    }
    return lines.join('\n') + '\n';
  }

  const server = http.createServer((req, res) => {
    const path = (req.url || '/').split('?', 1)[0];
    let status = 200;
    let type = 'text/plain; charset=utf-8';
    let body;
    const headers = {};
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      status = 405;
      body = 'method not allowed\n';
      headers.Allow = 'GET, HEAD';
    } else if (path === '/') {
      type = 'text/html; charset=utf-8';
      body = indexPage();
      headers['Cache-Control'] = `max-age=${CACHE_MAX_AGE}`;
    } else if (path === '/healthz') {
      body = 'ok\n';
    } else if (path === '/api/hello') {
      type = 'application/json';
      if (authorized(apiKey, req.headers.authorization)) {
        body = JSON.stringify({ title: SERVICE_TITLE, greeting: GREETING });
      } else {
        status = 401;
        body = '{"error": "unauthorized"}';
        headers['WWW-Authenticate'] = 'Bearer';
      }
    } else if (path === '/metrics' && ENABLE_METRICS) {
      type = 'text/plain; version=0.0.4';
      body = metrics();
    } else {
      status = 404;
      body = 'not found\n';
    }
    // Only the known routes are counted, so that any path cannot grow the table.
    const key = `${status === 404 || status === 405 ? 'other' : path} ${status}`;
    requests.set(key, (requests.get(key) || 0) + 1);
    const bytes = Buffer.from(body, 'utf8');
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': bytes.length, ...headers });
    res.end(req.method === 'HEAD' ? undefined : bytes);
    logAt('info', `${req.socket.remoteAddress} "${req.method} ${path}" ${status}`);
  });
  return server;
}

// $PORT as a TCP port (DEFAULT_PORT when unset); throws otherwise.
function portFromEnvironment(env = process.env) {
  const value = (env.PORT || '').trim();
  if (value === '') return DEFAULT_PORT;
  if (!/^[0-9]+$/.test(value)) throw new Error(`PORT must be a number, not "${value}"`);
  const port = Number(value);
  if (port < 1 || port > 65535) throw new Error(`PORT must be between 1 and 65535, not ${port}`);
  return port;
}

function main() {
  let port;
  try {
    port = portFromEnvironment();
  } catch (e) {
    logAt('error', `bad PORT: ${e.message}`);
    process.exit(2);
  }
  const apiKey = process.env.API_KEY || null;
  const server = createServer({ apiKey });
  // Stop on SIGTERM (a container's stop) and SIGINT: finish, then exit 0.
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => {
      logAt('info', `${signal}: stopping`);
      server.close(() => process.exit(0));
      server.closeIdleConnections?.();
    });
  }
  server.listen(port, '0.0.0.0', () => {
    logAt('info', `${SERVICE_TITLE} listening on port ${port} (API key ${apiKey ? 'required' : 'not set'})`);
  });
}

module.exports = {
  SERVICE_TITLE, GREETING, CACHE_MAX_AGE, ENABLE_METRICS, LOG_LEVEL, DEFAULT_PORT,
  createServer, portFromEnvironment, escapeHtml,
};

if (require.main === module) main();
