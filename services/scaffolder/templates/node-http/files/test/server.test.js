'use strict';
// The service's routes, served on a free loopback port.
//
// Run from the project's root: node --test

const assert = require('node:assert/strict');
const http = require('node:http');
const { describe, it, before, after } = require('node:test');

const service = require('../server.js');

// Starts the service on a free loopback port; returns { get, close }.
async function start(options) {
  const server = service.createServer(options);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const get = (path, headers = {}) => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'),
      }));
    }).on('error', reject);
  });
  const close = () => new Promise((resolve) => server.close(resolve));
  return { get, close };
}

describe('routes', () => {
  let s;
  before(async () => { s = await start({}); });
  after(() => s.close());

  it('shows the title and greeting at /', async () => {
    const r = await s.get('/');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^text\/html/);
    assert.ok(r.body.includes(`<title>${service.escapeHtml(service.SERVICE_TITLE)}</title>`));
    assert.ok(r.body.includes(service.escapeHtml(service.GREETING)));
    assert.equal(r.headers['cache-control'], `max-age=${service.CACHE_MAX_AGE}`);
  });

  it('answers ok at /healthz', async () => {
    const r = await s.get('/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok\n');
  });

  it('greets as JSON at /api/hello without an API key', async () => {
    const r = await s.get('/api/hello');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { title: service.SERVICE_TITLE, greeting: service.GREETING });
  });

  it('answers 404 for an unknown path', async () => {
    assert.equal((await s.get('/no-such-page')).status, 404);
  });

  it('counts requests at /metrics when enabled', { skip: !service.ENABLE_METRICS && 'metrics are not enabled (enable_metrics)' }, async () => {
    await s.get('/healthz');
    const r = await s.get('/metrics');
    assert.equal(r.status, 200);
    assert.match(r.body, /http_requests_total\{path="\/healthz",status="200"\} [0-9]+/);
  });

  it('has no /metrics when disabled', { skip: service.ENABLE_METRICS && 'metrics are enabled (enable_metrics)' }, async () => {
    assert.equal((await s.get('/metrics')).status, 404);
  });
});

describe('API key', () => {
  const apiKey = 'test-key-0123456789';
  let s;
  before(async () => { s = await start({ apiKey }); });
  after(() => s.close());

  it('protects /api/hello', async () => {
    const none = await s.get('/api/hello');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Bearer');
    assert.equal((await s.get('/api/hello', { Authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await s.get('/api/hello', { Authorization: `Bearer ${apiKey}` })).status, 200);
  });

  it('leaves the page and the health check open', async () => {
    assert.equal((await s.get('/healthz')).status, 200);
    assert.equal((await s.get('/')).status, 200);
  });
});

describe('PORT', () => {
  it('defaults to 8080 and takes a number', () => {
    assert.equal(service.portFromEnvironment({}), service.DEFAULT_PORT);
    assert.equal(service.portFromEnvironment({ PORT: '9090' }), 9090);
  });

  it('refuses what is not a port', () => {
    for (const PORT of ['http', '0', '70000']) {
      assert.throws(() => service.portFromEnvironment({ PORT }), /PORT/);
    }
  });
});
