-- wrk script: POST /api/production_api/portfolio_data for 10 symbols.
-- Run: wrk -t2 -c64 -d15s --latency -s tests/load/portfolio_data.lua http://127.0.0.1:8080
wrk.method = "POST"
wrk.path = "/api/production_api/portfolio_data"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"symbols": ["AAPL", "MSFT", "JNJ", "KO", "XOM", "JPM", "PG", "WMT", "PEP", "MRK"]}'

-- Count non-200 answers so a run that "succeeds" on errors is visible.
local errors = 0
function response(status, headers, body)
  if status ~= 200 then errors = errors + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("non-200 responses: %d\n", summary.errors.status))
end
