-- wrk script for scripts/bench-serve.sh: POST the file $BENCH_BODY as a ping submission, print one RESULT line.
-- The request is static (no request() function), so wrk builds it once and spends its CPU on I/O only.
local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.path = "/submit/telemetry/0fdac909-d2ec-454c-b625-261a3e5d5c9b/main/Firefox/48.0a1/nightly/20160315030230"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json; charset=UTF-8"

done = function(summary, latency, requests)
  io.write(string.format(
    "RESULT requests=%d duration_us=%d status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
