"""Register N instances probed over HTTP at one endpoint, spread over services of at most 1,000 instances."""
import concurrent.futures
import sys

import boto3
from botocore.config import Config

endpoint, count, port = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def client():
    return boto3.client("servicediscovery", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                        aws_secret_access_key="bench", config=Config(inject_host_prefix=False))


sd = client()
op = sd.create_http_namespace(Name="health-bench")["OperationId"]
ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
services = [sd.create_service(Name=f"s{i}", NamespaceId=ns, HealthCheckConfig={"Type": "HTTP", "ResourcePath": "/health", "FailureThreshold": 3})["Service"]["Id"]
            for i in range((count + 999) // 1000)]
clients = [client() for _ in range(8)]
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    list(pool.map(lambda i: clients[i % 8].register_instance(ServiceId=services[i // 1000], InstanceId=f"i{i}", Attributes={
        "AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": port}), range(count)))
print(" ".join(services))
