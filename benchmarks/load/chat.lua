-- wrk script: POST realistic mixed ja/en chat messages from many users (the benchmark's MESSAGES, via
-- environment variables set by bench_throughput.py), each connection cycling through users and messages.
local messages = {}
local count = tonumber(os.getenv("BENCH_MESSAGES") or "0")
for i = 1, count do messages[i] = os.getenv("BENCH_MESSAGE_" .. i) end
local users = tonumber(os.getenv("BENCH_USERS") or "500")
local n = 0

function setup(thread)
  thread:set("offset", math.random(0, 100000))
end

request = function()
  n = n + 1
  local i = n + offset
  local body = string.format('{"user":"load-%d",%s}', i % users, messages[(i % count) + 1])
  return wrk.format("POST", "/api/chat", {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. "\n")
  end
end
