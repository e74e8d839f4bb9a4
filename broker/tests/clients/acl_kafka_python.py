"""kafka-python 3.0 KafkaAdminClient ACL administration over SASL_PLAINTEXT SCRAM-SHA-512, run
by broker/tests/acl.rs: create_acls (PRINCIPAL may WRITE TOPIC), describe_acls of TOPIC,
delete_acls of that binding, describe_acls again. Prints one JSON object.
"""
import json
import sys

from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         KafkaAdminClient, ResourcePattern, ResourcePatternFilter, ResourceType)


def row(a):
    return [a.resource_pattern.resource_type.name, a.resource_pattern.resource_name,
            a.resource_pattern.pattern_type.name, a.principal, a.host, a.operation.name,
            a.permission_type.name]


def main():
    bootstrap, user, password, topic, principal = sys.argv[1:6]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user,
                             sasl_plain_password=password, client_id="weir-acl-py")
    acl = ACL(principal=principal, host="*", operation=ACLOperation.WRITE,
              permission_type=ACLPermissionType.ALLOW,
              resource_pattern=ResourcePattern(ResourceType.TOPIC, topic))
    created = admin.create_acls([acl])
    flt = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                    permission_type=ACLPermissionType.ANY,
                    resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, topic,
                                                           ACLResourcePatternType.LITERAL))
    described, err = admin.describe_acls(flt)
    deleted = admin.delete_acls([flt])
    after, err2 = admin.describe_acls(flt)
    admin.close()
    print(json.dumps({
        "created": len(created["succeeded"]),
        "create_failed": [str(f) for f in created["failed"]],
        "described": sorted(row(a) for a in described),
        "describe_error": getattr(err, "__name__", str(err)),
        "deleted": sorted(row(a) for d in deleted for a in d[1]),
        "after": sorted(row(a) for a in after),
    }))


if __name__ == "__main__":
    main()
