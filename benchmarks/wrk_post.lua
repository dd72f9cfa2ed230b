-- wrk script: POST the body in $BENCH_BODY_FILE to the URL, print one JSON line at the end.
-- Latencies are wrk's own histogram, which wrk corrects for coordinated omission before
-- done() sees it (stats_correct: synthetic samples for every request slower than the mean
-- interval), so the tail percentiles are wrk's view, not raw samples.
local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"

-- $BENCH_PATHS (comma-separated): each request goes to the next path in turn
local paths = {}
for p in string.gmatch(os.getenv("BENCH_PATHS") or "", "[^,]+") do paths[#paths + 1] = p end
if #paths > 0 then
  local i = 0
  request = function()
    i = i + 1
    return wrk.format(nil, paths[(i % #paths) + 1])
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us":%.0f,"requests":%.0f,"bytes":%.0f,' ..
    '"errors":{"connect":%.0f,"read":%.0f,"write":%.0f,"status":%.0f,"timeout":%.0f},' ..
    '"latency_us":{"p50":%.1f,"p90":%.1f,"p99":%.1f,"mean":%.1f,"max":%.1f}}\n',
    summary.duration, summary.requests, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
