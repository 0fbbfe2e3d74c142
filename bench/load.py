"""Load the same namespace, service and N instances into a Cloud Map endpoint (Cairn or moto)."""
import sys

import boto3
from botocore.config import Config

endpoint, count = sys.argv[1], int(sys.argv[2])
sd = boto3.client("servicediscovery", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                  aws_secret_access_key="bench", config=Config(inject_host_prefix=False))
op = sd.create_http_namespace(Name="bench")["OperationId"]
ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
service = sd.create_service(Name="svc", NamespaceId=ns)["Service"]["Id"]
for i in range(count):
    sd.register_instance(ServiceId=service, InstanceId=f"i-{i:04}", Attributes={
        "AWS_INSTANCE_IPV4": f"10.0.{i // 250}.{i % 250 + 1}", "AWS_INSTANCE_PORT": "8080",
        "version": f"v{i % 3}", "az": f"us-east-1{'abc'[i % 3]}", "team": "payments", "build": f"2026.11.{i}"})
found = sd.discover_instances(NamespaceName="bench", ServiceName="svc", MaxResults=1000)["Instances"]
assert len(found) == count, f"{endpoint}: loaded {len(found)} of {count}"
print(service)
