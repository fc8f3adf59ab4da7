-- Every request a distinct `message` event (its own utterance and sent_at), across 100 calls;
-- each wrk thread numbers its own requests, so no two are alike.
local threads = 0
setup = function(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
counter = 0
request = function()
  counter = counter + 1
  local n = counter * 16 + tid
  local call = "call-" .. (n % 100)
  local body = string.format('{"event_type":"message","call_id":"%s","message":{"sender":"user","message":"utterance %d of the call","sent_at":"2024-01-15T10:%02d:%02d.%06dZ"},"call_data":{"userName":"John Doe","agentId":"agent_456"}}',
    call, n, math.floor(n / 60000000) % 60, math.floor(n / 1000000) % 60, n % 1000000)
  return wrk.format("POST", "/webhook", {["Content-Type"] = "application/json"}, body)
end
