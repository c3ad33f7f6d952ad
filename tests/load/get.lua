-- wrk script for GET scenarios: the path comes from the URL; counts non-200s.
function done(summary, latency, requests)
  io.write(string.format("non-200 responses: %d\n", summary.errors.status))
end
