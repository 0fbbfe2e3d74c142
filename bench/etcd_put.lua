-- wrk: etcd v3 puts through its HTTP/JSON gateway, one key per request over 800 keys per thread (as bench/register.lua
-- upserts 800 instance ids); etcd fsyncs its WAL before it answers, so every request is a durable write.
local counter = 0
local threadId = 0

function setup(thread)
  threadId = threadId + 1
  thread:set("tid", threadId)
end

function init(args)
  counter = 0
end

-- base64 without a library: keys and values are ASCII, padded to a multiple of 3 bytes so no '=' is needed.
local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function b64(s)
  while #s % 3 ~= 0 do s = s .. " " end
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + b * 256 + c
    for j = 3, 0, -1 do
      local k = math.floor(n / (64 ^ j)) % 64
      out[#out + 1] = chars:sub(k + 1, k + 1)
    end
  end
  return table.concat(out)
end

request = function()
  counter = counter + 1
  local key = string.format("/services/bench/r%d-%d", tid, counter % 400)
  local value = string.format('{"AWS_INSTANCE_IPV4":"10.9.0.1","AWS_INSTANCE_PORT":"80","n":"%d"}', counter)
  local body = string.format('{"key":"%s","value":"%s"}', b64(key), b64(value))
  return wrk.format("POST", "/v3/kv/put", {["Content-Type"] = "application/json"}, body)
end
