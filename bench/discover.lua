-- wrk: DiscoverInstances for the loaded service (all of its instances in every answer).
wrk.method = "POST"
wrk.body = '{"NamespaceName":"bench","ServiceName":"svc","HealthStatus":"ALL","MaxResults":1000}'
wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
wrk.headers["X-Amz-Target"] = "Route53AutoNaming_v20170314.DiscoverInstances"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/servicediscovery/aws4_request, SignedHeaders=host, Signature=0"
