#!/usr/bin/env node
// graphile-worker peer for the job-queue benchmark (tools/bench/jobs).
//
//   node bench.mjs s1 [--jobs 100000] [--concurrency 24]
//     S1 drain: enqueue N no-op jobs up front (add_jobs in batches), then start
//     the runner and time from runner start until the queue is empty (every
//     job's completion committed). One JSON line on stdout.
//   node bench.mjs s3 [--jobs 1000] [--concurrency 24] [--gap-ms 10] [--warmup 20]
//     S3 idle latency: a worker runs in a child process, idle; the parent
//     enqueues one job at a time (one add_job call each) and the handler
//     records when it starts. Latency = handler start - moment before add_job
//     (both process.hrtime, i.e. CLOCK_MONOTONIC, shared by the processes).
//     The next job is enqueued once the previous one completed and the worker
//     has been idle for --gap-ms. One JSON line on stdout.
//
// Connection: DATABASE_URL, else the PG* variables. Graphile Worker installs
// (migrates) its own schema, graphile_worker, in that database.
//
// Configuration: the one https://worker.graphile.org/docs/performance used
// for its published numbers (concurrentJobs 24, maxPoolSize 25, localQueue
// size 500, completeJobBatchDelay 0, failJobBatchDelay 0); everything else at
// its default (preparedStatements true, pollInterval 2000, useNodeTime false).
// Info/debug logs are dropped (Worker logs one line per completed job).
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { run, runMigrations, makeWorkerUtils, Logger } = require("graphile-worker");
const workerVersion = require("graphile-worker/package.json").version;

function parseArgs(argv) {
  const [mode, ...rest] = argv;
  const opts = {};
  for (let i = 0; i < rest.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(rest[i]);
    if (!m) throw new Error(`unexpected argument: ${rest[i]}`);
    const value = m[2] ?? rest[++i];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${m[1]} needs a number, got ${value}`);
    opts[m[1]] = n;
  }
  return { mode, opts };
}

// Keeps warnings and errors (on stderr), drops info/debug.
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning" || level === "warn") {
    process.stderr.write(`graphile-worker ${level}: ${message}\n`);
  }
});

function preset(concurrency) {
  return {
    worker: {
      concurrentJobs: concurrency,
      maxPoolSize: concurrency + 1,
      localQueue: { size: 500 },
      completeJobBatchDelay: 0,
      failJobBatchDelay: 0,
    },
  };
}

const configSummary = (concurrency) => ({
  version: workerVersion,
  ...preset(concurrency).worker,
});

const nowNs = () => process.hrtime.bigint();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function queueLength(utils) {
  const { rows } = await utils.withPgClient((c) =>
    c.query("select count(*)::int as n from graphile_worker._private_jobs"),
  );
  return rows[0].n;
}

async function prepare(concurrency) {
  await runMigrations({ preset: preset(concurrency), logger });
  const utils = await makeWorkerUtils({ preset: preset(concurrency), logger });
  // Leftovers of an earlier (interrupted) run would distort the numbers.
  await utils.withPgClient((c) => c.query("delete from graphile_worker._private_jobs"));
  return utils;
}

async function s1({ jobs = 100000, concurrency = 24 }) {
  const utils = await prepare(concurrency);
  const enqueueStart = nowNs();
  const chunk = 10000;
  for (let done = 0; done < jobs; done += chunk) {
    const n = Math.min(chunk, jobs - done);
    await utils.addJobs(Array.from({ length: n }, () => ({ identifier: "noop", payload: {} })));
  }
  const enqueueSeconds = Number(nowNs() - enqueueStart) / 1e9;
  if ((await queueLength(utils)) !== jobs) throw new Error("enqueue did not store every job");

  let ran = 0;
  let failed = 0;
  let allRan;
  const allRanPromise = new Promise((resolve) => (allRan = resolve));
  const events = new EventEmitter();
  events.on("job:error", () => failed++);

  const start = nowNs();
  const runner = await run({
    preset: preset(concurrency),
    logger,
    events,
    noHandleSignals: true,
    crontab: "",
    taskList: {
      noop: async () => {
        if (++ran === jobs) allRan();
      },
    },
  });
  await allRanPromise;
  // Done = every completion committed (completions are batched), i.e. the
  // queue is empty.
  while ((await queueLength(utils)) > 0) await sleep(1);
  const seconds = Number(nowNs() - start) / 1e9;
  await runner.stop();
  await utils.release();
  if (failed) throw new Error(`${failed} jobs failed`);
  console.log(
    JSON.stringify({
      scenario: "S1",
      system: "graphile-worker",
      jobs,
      seconds: +seconds.toFixed(3),
      jobs_per_sec: Math.round(jobs / seconds),
      enqueue_jobs_per_sec: Math.round(jobs / enqueueSeconds),
      config: configSummary(concurrency),
    }),
  );
}

// The S3 worker: a separate process, so the enqueuer's event loop and the
// worker's never share a thread (as with a real producer and worker).
async function s3Worker({ concurrency = 24 }) {
  const events = new EventEmitter();
  events.on("job:complete", ({ job }) => process.send({ type: "complete", i: job.payload.i }));
  const runner = await run({
    preset: preset(concurrency),
    logger,
    events,
    noHandleSignals: true,
    crontab: "",
    taskList: {
      noop: async (payload) => {
        const t = nowNs();
        process.send({ type: "start", i: payload.i, t: t.toString() });
      },
    },
  });
  process.on("message", async (m) => {
    if (m.type === "stop") {
      await runner.stop();
      process.exit(0);
    }
  });
  process.send({ type: "ready" });
}

function percentile(sorted, p) {
  // Nearest rank.
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

async function s3({ jobs = 1000, concurrency = 24, "gap-ms": gapMs = 10, warmup = 20 }) {
  const utils = await prepare(concurrency);
  const child = fork(fileURLToPath(import.meta.url), ["s3-worker", "--concurrency", String(concurrency)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const waiters = new Map(); // "start:i" / "complete:i" → resolve
  let ready;
  const readyPromise = new Promise((r) => (ready = r));
  child.on("message", (m) => {
    if (m.type === "ready") return ready();
    const key = `${m.type}:${m.i}`;
    const w = waiters.get(key);
    if (w) {
      waiters.delete(key);
      w(m);
    }
  });
  child.on("exit", (code) => {
    if (code !== 0) {
      console.error(`s3 worker exited with ${code}`);
      process.exit(1);
    }
  });
  const waitFor = (type, i) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`job ${i}: no ${type} within 10 s`)), 10000);
      waiters.set(`${type}:${i}`, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
  await readyPromise;
  await sleep(200); // let the pool finish its first fetch and go idle

  const latenciesMs = [];
  for (let i = 0; i < warmup + jobs; i++) {
    const started = waitFor("start", i);
    const completed = waitFor("complete", i);
    const t0 = nowNs();
    await utils.addJob("noop", { i });
    const m = await started;
    if (i >= warmup) latenciesMs.push(Number(BigInt(m.t) - t0) / 1e6);
    await completed;
    await sleep(gapMs);
  }
  child.send({ type: "stop" });
  await new Promise((r) => child.once("exit", r));
  await utils.release();

  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  const r = (x) => +x.toFixed(3);
  console.log(
    JSON.stringify({
      scenario: "S3",
      system: "graphile-worker",
      jobs,
      p50_ms: r(percentile(sorted, 50)),
      p99_ms: r(percentile(sorted, 99)),
      mean_ms: r(mean),
      max_ms: r(sorted[sorted.length - 1]),
      gap_ms: gapMs,
      config: configSummary(concurrency),
    }),
  );
}

const { mode, opts } = parseArgs(process.argv.slice(2));
const modes = { s1, s3, "s3-worker": s3Worker };
if (!modes[mode]) {
  console.error("usage: bench.mjs s1 [--jobs N] [--concurrency C] | s3 [--jobs N] [--concurrency C] [--gap-ms MS] [--warmup N]");
  process.exit(2);
}
modes[mode](opts).catch((err) => {
  console.error(`bench.mjs ${mode}: ${err.stack || err}`);
  process.exit(1);
});
