#!/usr/bin/env node
// An open-loop HTTP load generator: requests leave on a fixed schedule whether or not earlier
// ones were answered, so a slow server cannot slow the generator down and hide its own latency
// (no coordinated omission). Node.js's own http client, no dependencies.
//
//   node openloop.js PLAN.json --rate 500 --duration 20 --warmup 5 [--arrivals uniform|poisson]
//       [--start N] [--seed N] [--url http://127.0.0.1:PORT]
//
// PLAN.json: {"url": "http://127.0.0.1:8000", "headers": {...}, "requests": [{"method": "GET",
// "path": "/...", "body": "..."}, ...], "cycle": true, "start": 0, "timeout_ms": 10000,
// "max_sockets": 512, "body_must_contain": "\"items\""}
// Requests are taken in order from `--start` (or the plan's `start`), wrapping round when
// `cycle`; without it the run fails if the list is too short. Prints one JSON object: counts,
// statuses, errors and exact percentiles over every request of the measured window (after the
// warm-up), with latency measured two ways:
// from the moment the request was due on the schedule (what a client arriving then would wait,
// including any lateness of this generator) and from the moment it was handed to the socket.
"use strict";

const fs = require("fs");
const http = require("http");

function args(argv) {
  const out = { arrivals: "uniform", warmup: 5, duration: 20, rate: 100, seed: 1 };
  out.plan = argv[0];
  for (let i = 1; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, "");
    const value = argv[i + 1];
    out[name] = name === "arrivals" || name === "url" ? value : Number(value);
  }
  if (!out.plan || !(out.rate > 0) || !(out.duration > 0) || !(out.warmup >= 0)) {
    process.stderr.write("usage: node openloop.js PLAN.json --rate R --duration S --warmup S\n");
    process.exit(2);
  }
  return out;
}

// A small seeded generator (mulberry32) for Poisson gaps, so runs repeat.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function percentile(sorted, q) {
  if (!sorted.length) return null;
  // nearest rank: the smallest value with at least q of the samples at or below it
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}

function summary(values) {
  const sorted = Float64Array.from(values).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    max: sorted.length ? sorted[sorted.length - 1] : null,
    mean: sorted.length ? sorted.reduce((s, v) => s + v, 0) / sorted.length : null,
  };
}

function main() {
  const opts = args(process.argv.slice(2));
  const plan = JSON.parse(fs.readFileSync(opts.plan, "utf8"));
  const url = new URL(opts.url || plan.url);
  const requests = plan.requests;
  const cycle = plan.cycle !== false;
  const start = Number.isFinite(opts.start) ? opts.start : plan.start || 0;
  const timeoutMs = plan.timeout_ms || 10000;
  const mustContain = plan.body_must_contain || null;
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: plan.max_sockets || 512,
    maxFreeSockets: plan.max_sockets || 512,
    // Close an idle socket before the server does (gunicorn's keep-alive is 2 s), so a request
    // is never written into a connection the server is closing (ECONNRESET).
    timeout: plan.idle_socket_ms || 1000,
  });
  const total = Math.round(opts.rate * (opts.warmup + opts.duration));
  if (!cycle && start + total > requests.length) {
    process.stderr.write(`the plan holds ${requests.length} requests; this run needs ${total}\n`);
    process.exit(2);
  }

  // The schedule, in ms after t0: evenly spaced, or Poisson arrivals at the same mean rate.
  const due = new Float64Array(total);
  const draw = random(opts.seed);
  for (let i = 0, t = 0; i < total; i++) {
    due[i] = opts.arrivals === "poisson" ? t : (i * 1000) / opts.rate;
    if (opts.arrivals === "poisson") t += (-Math.log(1 - draw()) * 1000) / opts.rate;
  }
  const warmupMs = opts.warmup * 1000;
  const lastDue = due[total - 1];

  const fromDue = [];
  const fromSend = [];
  const lags = [];
  const statuses = {};
  const errors = {};
  let measured = 0;
  let answered = 0;
  let okAll = 0; // 2xx answers over the whole run, warm-up included
  let answeredAll = 0;
  let mismatched = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let lastAnswer = 0;
  let next = 0;
  let sendingDone = false;
  const cpuStart = process.cpuUsage();
  const t0 = performance.now() + 20;

  function finish(index, sentAt, status, error, body) {
    inFlight -= 1;
    const now = performance.now();
    answeredAll += 1;
    if (!error && status >= 200 && status < 300) okAll += 1;
    if (due[index] >= warmupMs) {
      answered += 1;
      lastAnswer = Math.max(lastAnswer, now - t0);
      if (error) {
        errors[error] = (errors[error] || 0) + 1;
      } else {
        statuses[status] = (statuses[status] || 0) + 1;
        fromDue.push(now - (t0 + due[index]));
        fromSend.push(now - sentAt);
        if (mustContain && status < 300 && !body.includes(mustContain)) mismatched += 1;
      }
    }
    if (sendingDone && inFlight === 0) report();
  }

  function send(index) {
    const spec = requests[(start + index) % requests.length];
    const sentAt = performance.now();
    if (due[index] >= warmupMs) {
      measured += 1;
      lags.push(sentAt - (t0 + due[index]));
    }
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    let done = false;
    const once = (status, error, body) => {
      if (!done) {
        done = true;
        finish(index, sentAt, status, error, body);
      }
    };
    const headers = { ...plan.headers, ...(spec.headers || {}) };
    if (spec.body != null) headers["content-length"] = Buffer.byteLength(spec.body);
    const request = http.request(
      { agent, host: url.hostname, port: url.port, method: spec.method || "GET", path: spec.path, headers },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("end", () => once(response.statusCode, null, Buffer.concat(chunks).toString()));
        response.on("error", (error) => once(0, error.code || error.message));
      },
    );
    request.setTimeout(timeoutMs, () => request.destroy(new Error("timeout")));
    request.on("error", (error) => once(0, error.code || error.message));
    request.end(spec.body == null ? undefined : spec.body);
  }

  function tick() {
    const now = performance.now() - t0;
    while (next < total && due[next] <= now) send(next++);
    if (next < total) {
      setTimeout(tick, Math.max(0, Math.floor(due[next] - (performance.now() - t0))));
    } else {
      sendingDone = true;
      if (inFlight === 0) report();
    }
  }

  let reported = false;
  function report() {
    if (reported) return;
    reported = true;
    const cpu = process.cpuUsage(cpuStart);
    const elapsed = performance.now() - t0;
    const windowMs = lastDue - warmupMs + 1000 / opts.rate;
    const ok = Object.entries(statuses)
      .filter(([status]) => status >= 200 && status < 300)
      .reduce((s, [, n]) => s + n, 0);
    process.stdout.write(
      JSON.stringify({
        rate: opts.rate,
        arrivals: opts.arrivals,
        warmup_s: opts.warmup,
        duration_s: opts.duration,
        sent: measured,
        answered,
        ok,
        sent_all: next,
        answered_all: answeredAll,
        ok_all: okAll,
        statuses,
        errors,
        body_mismatched: mismatched,
        // requests sent per second of the measured window, and 2xx answers per second from
        // the window's start to the last answer
        offered_per_s: measured / (windowMs / 1000),
        achieved_per_s: ok / (Math.max(windowMs, lastAnswer - warmupMs) / 1000),
        latency_from_due_ms: summary(fromDue),
        latency_from_send_ms: summary(fromSend),
        send_lag_ms: summary(lags),
        max_in_flight: maxInFlight,
        generator_cpu_share: (cpu.user + cpu.system) / 1000 / elapsed,
      }) + "\n",
    );
    agent.destroy();
    process.exit(0);
  }

  // Stop waiting for answers well after the last request was due (each also has its timeout).
  setTimeout(() => {
    for (let i = 0; i < inFlight; i++) errors.unanswered = (errors.unanswered || 0) + 1;
    report();
  }, lastDue + timeoutMs + 2000 + 20).unref();

  setTimeout(tick, 20);
}

main();
