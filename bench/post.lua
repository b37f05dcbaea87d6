-- wrk script for bench/run.py: POST one chat-completion body with the headers it needs.
-- The body and the optional Authorization value come from the environment, so one script
-- serves every target and mode:
--   BENCH_BODY  the JSON body (required)
--   BENCH_AUTH  the full Authorization header value, e.g. "Bearer lw-..." (optional)
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
