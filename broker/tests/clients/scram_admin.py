"""confluent-kafka's SCRAM credential admin calls (AlterUserScramCredentials,
DescribeUserScramCredentials) against Weir, run by broker/tests/scram_admin.rs.

The admin (SASL_PLAINTEXT, SCRAM-SHA-512) gives bob a SCRAM-SHA-256 credential,
describes it, bob logs in with it (and not with a wrong password), the admin asks
for too few iterations (refused), deletes bob's credential, and bob can no longer
log in. Prints one JSON object with what each step saw.
"""
import argparse
import json

from confluent_kafka import Producer
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialDeletion,
                                   UserScramCredentialUpsertion)

TIMEOUT_S = 20


def sasl(bootstrap, mechanism, user, password):
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}


def error_code(future):
    """The Kafka error name a future failed with, or None."""
    try:
        future.result(timeout=TIMEOUT_S)
        return None
    except Exception as e:  # noqa: BLE001 - the error is what is reported
        err = e.args[0] if e.args else e
        return err.name() if hasattr(err, "name") else repr(e)


def login(bootstrap, user, password):
    """Whether `user` can log in with SCRAM-SHA-256 (a metadata round trip)."""
    errors = []
    p = Producer({**sasl(bootstrap, "SCRAM-SHA-256", user, password),
                  "error_cb": lambda e: errors.append(e.name())})
    try:
        p.list_topics(timeout=5)
        return {"ok": True, "errors": errors}
    except Exception:  # noqa: BLE001 - a refused login times out the metadata call
        return {"ok": False, "errors": sorted(set(errors))}


def describe(admin, users):
    out = {}
    for user, fut in admin.describe_user_scram_credentials(users, request_timeout=TIMEOUT_S).items():
        try:
            d = fut.result(timeout=TIMEOUT_S)
            out[user] = [[str(i.mechanism).split(".")[-1], i.iterations]
                         for i in d.scram_credential_infos]
        except Exception as e:  # noqa: BLE001
            out[user] = (e.args[0].name() if e.args and hasattr(e.args[0], "name") else repr(e))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--admin", required=True)
    ap.add_argument("--admin-password", required=True)
    ap.add_argument("--bob-password", required=True)
    a = ap.parse_args()
    admin = AdminClient(sasl(a.bootstrap, "SCRAM-SHA-512", a.admin, a.admin_password))
    out = {}
    sha256 = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192)
    up = UserScramCredentialUpsertion("bob", sha256, a.bob_password.encode())
    out["upsert"] = error_code(admin.alter_user_scram_credentials([up], request_timeout=TIMEOUT_S)["bob"])
    out["described"] = describe(admin, ["bob"])
    out["login"] = login(a.bootstrap, "bob", a.bob_password)
    out["wrong_login"] = login(a.bootstrap, "bob", a.bob_password + "x")
    few = UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100),
                                       b"c4rol-Secret-pw")
    out["too_few_iterations"] = error_code(
        admin.alter_user_scram_credentials([few], request_timeout=TIMEOUT_S)["carol"])
    out["carol"] = describe(admin, ["carol"])
    gone = UserScramCredentialDeletion("bob", ScramMechanism.SCRAM_SHA_256)
    out["delete"] = error_code(admin.alter_user_scram_credentials([gone], request_timeout=TIMEOUT_S)["bob"])
    out["after_delete"] = describe(admin, ["bob"])
    out["login_after_delete"] = login(a.bootstrap, "bob", a.bob_password)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
