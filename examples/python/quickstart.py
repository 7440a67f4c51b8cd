#!/usr/bin/env python3
"""Ferry from Python (bindings/python): consent, on-device PII masking, local export, stats, optional upload.

    FERRY_LIBRARY=build/sdk/libferry.so PYTHONPATH=bindings/python python3 examples/python/quickstart.py \
        [ENDPOINT WRITE_KEY [CA_FILE]]      (or FERRY_ENDPOINT, FERRY_WRITE_KEY, FERRY_CA_FILE)
"""
import json
import os
import sys
import tempfile

import ferry


def arg(i, env):
    v = sys.argv[i] if len(sys.argv) > i else os.environ.get(env, "")
    return v or None


def main():
    endpoint, write_key, ca_file = arg(1, "FERRY_ENDPOINT"), arg(2, "FERRY_WRITE_KEY"), arg(3, "FERRY_CA_FILE")
    options = dict(app_name="quickstart.py", app_version=ferry.library_version(),
                   default_consent={"analytics": ferry.Consent.GRANTED, "personalization": ferry.Consent.DENIED},
                   pii_rules={"detectors": {"phone": "mask"}})
    if endpoint:
        options.update(endpoint=endpoint)
        if write_key:
            options.update(write_key=write_key)
        if ca_file:
            options.update(ca_file=ca_file)
    rc = 0
    with tempfile.TemporaryDirectory(prefix="ferry_quickstart_py.") as d:
        with ferry.Client(storage_path=os.path.join(d, "buffer.db"), **options) as client:
            print(f"Ferry {ferry.library_version()} quickstart (Python)\n")
            client.identify("user-3003", {"plan": "pro"})
            client.track("order_completed", {"email": "wang.fang@example.com", "mobile": "13912345678",
                                              "password": "hunter2", "amount": 42.5})
            try:  # marketing is pending and not held (the C quickstart shows the hold): dropped, not kept
                client.track("newsletter_prompt", {"placement": "footer"}, purpose="marketing")
                rc = 1
            except ferry.ConsentDeniedError as e:
                print("marketing (pending, not held):", e)
            print("marketing consent:", client.get_consent("marketing").name)
            try:
                client.track("recommendation_shown", {"item": "sku-9"}, purpose="personalization")
                rc = 1
            except ferry.ConsentDeniedError as e:
                print("personalization:", e)
            exported = client.export_local()
            order = next(e for e in exported["events"] if e.get("event") == "order_completed")
            print("\nstored properties of order_completed:", json.dumps(order["properties"], ensure_ascii=False))
            if endpoint:
                try:
                    client.flush(10000)
                    print("flush: ok")
                except ferry.FerryError as e:
                    print("flush:", e)
                    rc = 1
            print("\nstats:", json.dumps(client.stats(), indent=1))
    return rc


if __name__ == "__main__":
    sys.exit(main())
