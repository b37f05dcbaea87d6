-- wrk script for bench/run.py: POST one chat-completion body with the headers it needs.
-- The body and the optional headers come from the environment, so one script serves every
-- target and mode:
--   BENCH_BODY     the JSON body (required)
--   BENCH_AUTH     the full Authorization header value, e.g. "Bearer lw-..." (optional)
--   BENCH_HEADERS  more headers, one "Name: value" a line (optional; Portkey's routing headers)
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
local extra = os.getenv("BENCH_HEADERS")
if extra ~= nil then
  for name, value in extra:gmatch("([^:\n]+):%s*([^\n]*)") do
    wrk.headers[name] = value
  end
end
