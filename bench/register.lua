-- wrk: RegisterInstance from concurrent connections; every request is a durable write (an upsert over 800 ids, within the 1,000-per-service quota).
local counter = 0
local threadId = 0
local service = os.getenv("BENCH_SERVICE")

function setup(thread)
  threadId = threadId + 1
  thread:set("tid", threadId)
end

function init(args)
  counter = 0
end

request = function()
  counter = counter + 1
  local id = string.format("r%d-%d", tid, counter % 400)
  local body = string.format(
    '{"ServiceId":"%s","InstanceId":"%s","Attributes":{"AWS_INSTANCE_IPV4":"10.9.0.1","AWS_INSTANCE_PORT":"80","n":"%d"}}',
    service, id, counter)
  return wrk.format("POST", "/", {
    ["Content-Type"] = "application/x-amz-json-1.1",
    ["X-Amz-Target"] = "Route53AutoNaming_v20170314.RegisterInstance",
    ["Authorization"] = "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/servicediscovery/aws4_request, SignedHeaders=host, Signature=0",
  }, body)
end
