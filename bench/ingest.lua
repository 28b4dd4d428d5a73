-- wrk script: POST /pick-pack/demo/events with a unique eventId per request.
-- TOKEN comes from the environment; each wrk thread numbers its own requests.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
  wrk.headers["saas-token"] = "bench"
  run = os.getenv("RUN") or "r"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"eventId":"%s-%d-%d","orderNumber":"o%d","productId":"p%d","unit":"H87",' ..
    '"packedAmount":1,"timestamp":"2024-05-01T10:00:00.000Z","site":"main"}',
    run, tid, counter, counter % 500, counter % 7)
  return wrk.format(nil, "/pick-pack/demo/events", nil, body)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d errors=%d non2xx=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
