"""The DNS benchmark's data: 1,000 services x 3 instances with A and SRV records (DNS_SERVICES and DNS_INSTANCES
change the size, e.g. 10,000 x 10), loaded into Cairn through the API, written as a zone file (NSD and Knot), and a
dnsperf query file (80% A, 15% SRV, 5% NXDOMAIN)."""
import concurrent.futures
import os
import random
import sys

ZONE = "bench.test"
SERVICES = int(os.environ.get("DNS_SERVICES", "1000"))
INSTANCES = int(os.environ.get("DNS_INSTANCES", "3"))
TTL = 60


def instances():
    for s in range(SERVICES):
        for i in range(INSTANCES):
            yield s, i, f"10.{s // 250 % 250}.{s % 250}.{i + 1}", 8000 + i


def load_cairn(endpoint):
    import boto3
    from botocore.config import Config

    def client():
        return boto3.client("servicediscovery", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                            aws_secret_access_key="bench", config=Config(inject_host_prefix=False))

    sd = client()
    op = sd.create_public_dns_namespace(Name=ZONE)["OperationId"]
    ns = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    clients = [client() for _ in range(8)]
    # Services created by 8 threads too when there are many.
    def create(s):
        return s, clients[s % 8].create_service(Name=f"svc{s}", NamespaceId=ns, DnsConfig={
            "RoutingPolicy": "MULTIVALUE", "DnsRecords": [{"Type": "A", "TTL": TTL}, {"Type": "SRV", "TTL": TTL}]})["Service"]["Id"]

    def register(job):
        n, (s, i, ip, port) = job
        clients[n % 8].register_instance(ServiceId=ids[s], InstanceId=f"i{i}",
                                         Attributes={"AWS_INSTANCE_IPV4": ip, "AWS_INSTANCE_PORT": str(port)})

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = dict(pool.map(create, range(SERVICES)))
        list(pool.map(register, enumerate(instances())))


def nsd_zone(path):
    with open(path, "w") as f:
        f.write(f"$ORIGIN {ZONE}.\n$TTL {TTL}\n@ IN SOA ns1.cairn.internal. hostmaster.cairn.internal. 1 7200 900 1209600 86400\n")
        f.write("@ IN NS ns1.cairn.internal.\n")
        for s, i, ip, port in instances():
            f.write(f"svc{s} IN A {ip}\nsvc{s} IN SRV 1 1 {port} i{i}.svc{s}.{ZONE}.\ni{i}.svc{s} IN A {ip}\n")


def queries(path, count=max(20000, 3 * SERVICES)):
    rng = random.Random(7)
    with open(path, "w") as f:
        for _ in range(count):
            r = rng.random()
            s = rng.randrange(SERVICES)
            if r < 0.80:
                f.write(f"svc{s}.{ZONE} A\n")
            elif r < 0.95:
                f.write(f"svc{s}.{ZONE} SRV\n")
            else:
                f.write(f"missing{s}.{ZONE} A\n")


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "cairn":
        load_cairn(sys.argv[2])
    elif what == "zone":
        nsd_zone(sys.argv[2])
    elif what == "queries":
        queries(sys.argv[2])
