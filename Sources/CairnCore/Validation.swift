/// Cross-field rules the model cannot express: record type combinations, reserved attributes, tags, names.
public enum Validation {
    public static let reservedAttributeKeys: Set<String> = [
        "AWS_INSTANCE_IPV4", "AWS_INSTANCE_IPV6", "AWS_INSTANCE_PORT", "AWS_INSTANCE_CNAME", "AWS_ALIAS_DNS_NAME",
        "AWS_INIT_HEALTH_STATUS", "AWS_EC2_INSTANCE_ID",
    ]

    /// Tags: no reserved `aws:` prefix, at most `limit` after merging onto `existing` (later keys win).
    public static func mergedTags(_ existing: [Tag], adding new: [Tag], limit: Int, resource: String) throws(CairnError) -> [Tag] {
        for tag in new {
            if tag.key.lowercased().hasPrefix("aws:") || tag.value.lowercased().hasPrefix("aws:") {
                throw CairnError.invalid("Tag key or value '\(tag.key)' uses the reserved prefix aws:.")
            }
        }
        var merged = existing
        for tag in new {
            if let i = merged.firstIndex(where: { $0.key == tag.key }) { merged[i] = tag } else { merged.append(tag) }
        }
        if merged.count > limit {
            throw CairnError(
                .tooManyTags, "The resource \(resource) can have at most \(limit) tags; this request would leave \(merged.count).",
                extra: ["ResourceName": resource])
        }
        return merged
    }

    /// A DNS namespace name must be a domain name: labels of 1–63 characters, 253 in all.
    public static func checkDomainName(_ name: String) throws(CairnError) {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard name.utf8.count <= 253, labels.allSatisfy({ (1...63).contains($0.utf8.count) }) else {
            throw CairnError.invalid("Name '\(name)' is not a valid DNS domain name: labels must be 1 to 63 characters.")
        }
    }

    /// The DNS record types of a service: at most one each of A, AAAA, SRV in any combination, or CNAME alone.
    public static func checkRecords(_ records: [DnsRecord], routingPolicy: RoutingPolicy) throws(CairnError) {
        guard !records.isEmpty else { throw CairnError.invalid("DnsConfig.DnsRecords must contain at least one record.") }
        let types = records.map(\.type)
        if Set(types).count != types.count {
            throw CairnError.invalid("DnsConfig.DnsRecords contains a record type more than once.")
        }
        if types.contains(.CNAME) {
            if types.count > 1 { throw CairnError.invalid("A CNAME record can't be combined with other record types.") }
            if routingPolicy != .WEIGHTED {
                throw CairnError.invalid("A CNAME record requires the WEIGHTED routing policy.")
            }
        }
    }

    /// The instance attributes a service requires, and the limits on custom attributes.
    /// Characters as `String.count` counts them, without its grapheme breaking for ASCII text (one byte, one
    /// character), which is what nearly every attribute is.
    static func characterCount(_ text: String) -> Int {
        text.utf8.allSatisfy { $0 < 0x80 } ? text.utf8.count : text.count
    }

    public static func checkAttributes(
        _ attributes: [String: String], instanceId: String, service: Service, namespace: Namespace, limits: RegistryLimits
    ) throws(CairnError) {
        if let lease = attributes[Lease.attribute], Lease.seconds(attributes) == nil {
            throw CairnError.invalid(
                "\(Lease.attribute) must be a whole number of seconds from \(Lease.shortest) to \(Lease.longest), not '\(lease.prefix(32))'."
            )
        }
        let custom = attributes.keys.count { !reservedAttributeKeys.contains($0) }
        if custom > limits.customAttributesPerInstance {
            throw CairnError.invalid(
                "An instance can have at most \(limits.customAttributesPerInstance) custom attributes; \(custom) were given.")
        }
        let characters = attributes.reduce(0) { $0 + characterCount($1.key) + characterCount($1.value) }
        if characters > limits.attributeCharactersPerInstance {
            throw CairnError.invalid(
                "The attributes of an instance can total at most \(limits.attributeCharactersPerInstance) characters; \(characters) were given."
            )
        }
        let ipv4 = attributes["AWS_INSTANCE_IPV4"]
        let ipv6 = attributes["AWS_INSTANCE_IPV6"]
        if let ipv4, IPAddress.ipv4(ipv4) == nil {
            throw CairnError.invalid("AWS_INSTANCE_IPV4 '\(ipv4)' is not a valid IPv4 address.")
        }
        if let ipv6, IPAddress.ipv6(ipv6) == nil {
            throw CairnError.invalid("AWS_INSTANCE_IPV6 '\(ipv6)' is not a valid IPv6 address.")
        }
        if let port = attributes["AWS_INSTANCE_PORT"], Int(port).map({ (1...65535).contains($0) }) != true {
            throw CairnError.invalid("AWS_INSTANCE_PORT '\(port)' must be a port number from 1 to 65535.")
        }
        if let initial = attributes["AWS_INIT_HEALTH_STATUS"], initial != "HEALTHY", initial != "UNHEALTHY" {
            throw CairnError.invalid("AWS_INIT_HEALTH_STATUS must be HEALTHY or UNHEALTHY, not '\(initial)'.")
        }
        if attributes["AWS_EC2_INSTANCE_ID"] != nil {
            if namespace.type != .HTTP {
                throw CairnError.invalid("AWS_EC2_INSTANCE_ID can be used only in HTTP namespaces.")
            }
            let others = attributes.keys.filter {
                reservedAttributeKeys.contains($0) && $0 != "AWS_EC2_INSTANCE_ID" && $0 != "AWS_INIT_HEALTH_STATUS"
            }
            if !others.isEmpty {
                throw CairnError.invalid("With AWS_EC2_INSTANCE_ID the only other reserved attribute allowed is AWS_INIT_HEALTH_STATUS.")
            }
        }
        let alias = attributes["AWS_ALIAS_DNS_NAME"]
        if alias != nil {
            guard let dns = service.dnsConfig, dns.has(.A) || dns.has(.AAAA), dns.routingPolicy == .WEIGHTED else {
                throw CairnError.invalid("AWS_ALIAS_DNS_NAME requires a service with an A or AAAA record and the WEIGHTED routing policy.")
            }
            if attributes.keys.contains(where: { $0.hasPrefix("AWS_INSTANCE_") }) {
                throw CairnError.invalid("AWS_ALIAS_DNS_NAME can't be combined with AWS_INSTANCE_* attributes.")
            }
        }
        if let dns = service.dnsConfig, alias == nil {
            let hasA = dns.has(.A)
            let hasAAAA = dns.has(.AAAA)
            if hasA && hasAAAA {
                if ipv4 == nil && ipv6 == nil {
                    throw CairnError.invalid("The service has A and AAAA records: AWS_INSTANCE_IPV4 or AWS_INSTANCE_IPV6 is required.")
                }
            } else if hasA && ipv4 == nil {
                throw CairnError.invalid("The service has an A record: AWS_INSTANCE_IPV4 is required.")
            } else if hasAAAA && ipv6 == nil {
                throw CairnError.invalid("The service has an AAAA record: AWS_INSTANCE_IPV6 is required.")
            }
            if dns.has(.SRV) {
                if ipv4 == nil && ipv6 == nil {
                    throw CairnError.invalid("The service has an SRV record: AWS_INSTANCE_IPV4 or AWS_INSTANCE_IPV6 is required.")
                }
                if attributes["AWS_INSTANCE_PORT"] == nil {
                    throw CairnError.invalid("The service has an SRV record: AWS_INSTANCE_PORT is required.")
                }
                // The instance id becomes the first label of the SRV target name.
                if instanceId.utf8.count > 63 || instanceId.contains(where: { "/:@".contains($0) }) {
                    throw CairnError.invalid(
                        "Instance id '\(instanceId)' can't be used in a service with an SRV record: it must be a DNS label (at most 63 characters, no / : @)."
                    )
                }
            }
            if dns.has(.CNAME), attributes["AWS_INSTANCE_CNAME"] == nil {
                throw CairnError.invalid("The service has a CNAME record: AWS_INSTANCE_CNAME is required.")
            }
        }
        if service.healthCheckConfig != nil {
            if attributes["AWS_INSTANCE_PORT"] == nil || (ipv4 == nil && ipv6 == nil) {
                throw CairnError.invalid(
                    "The service has a health check: AWS_INSTANCE_PORT and AWS_INSTANCE_IPV4 (or AWS_INSTANCE_IPV6) are required.")
            }
        }
    }
}
