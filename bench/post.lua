-- wrk script: POST a Messages body with the headers in BENCH_* environment variables, and
-- print one JSON line of results (latency in microseconds) that bench/run.py parses.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
local key = os.getenv("BENCH_API_KEY")
if key and key ~= "" then wrk.headers["x-api-key"] = key end
local bearer = os.getenv("BENCH_BEARER")
if bearer and bearer ~= "" then wrk.headers["authorization"] = "Bearer " .. bearer end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
