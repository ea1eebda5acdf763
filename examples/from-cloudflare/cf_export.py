"""Export a Workers KV namespace from Cloudflare in edgekv's export format (NDJSON), with the
official `cloudflare` SDK: every key's value (as bytes), expiration and metadata.

    pip install cloudflare
    export CLOUDFLARE_API_TOKEN=... CLOUDFLARE_ACCOUNT_ID=...
    python cf_export.py --namespace-id NAMESPACE_ID --output tasks.ndjson
    edgekv kv namespace import tasks.ndjson --namespace-id EDGEKV_NAMESPACE_ID

Cloudflare has no snapshot read: keys written while this runs may or may not be in the file,
so stop the writers first for an exact copy (the header's seq is 0: no sequence numbers). One
value read per key (the API's bulk read returns text, not bytes): expect a few hundred keys per
second. CLOUDFLARE_API_BASE_URL points it at another server speaking the same API.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from typing import IO, Any

import cloudflare
from cloudflare import Cloudflare


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def export(cf: Cloudflare, account: str, namespace_id: str, out: IO[bytes]) -> int:
    ns = cf.kv.namespaces.get(namespace_id, account_id=account)
    header = {
        "edgekv_export": 1,
        "namespace": {"id": namespace_id, "title": ns.title},
        "seq": 0,
        "exported_at": int(time.time()),
    }
    out.write(line(header))
    count = 0
    for key in cf.kv.namespaces.keys.list(namespace_id, account_id=account):  # every page
        try:
            value = cf.kv.namespaces.values.get(
                key.name, account_id=account, namespace_id=namespace_id
            ).read()
        except cloudflare.NotFoundError:
            continue  # deleted since it was listed
        try:
            item: dict[str, Any] = {"key": key.name, "value": value.decode()}
        except UnicodeDecodeError:
            item = {"key": key.name, "value": base64.b64encode(value).decode(), "base64": True}
        if key.expiration is not None:
            item["expiration"] = int(key.expiration)
        if key.metadata is not None:
            item["metadata"] = key.metadata
        out.write(line(item))
        count += 1
    out.write(line({"edgekv_export_end": True, "count": count}))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace-id", required=True)
    parser.add_argument("--output", help="file to write (default: stdout)")
    args = parser.parse_args()
    cf = Cloudflare(
        api_token=os.environ["CLOUDFLARE_API_TOKEN"],
        base_url=os.environ.get("CLOUDFLARE_API_BASE_URL") or None,
    )
    account = os.environ["CLOUDFLARE_ACCOUNT_ID"]
    if args.output:
        with open(args.output, "wb") as out:
            count = export(cf, account, args.namespace_id, out)
    else:
        count = export(cf, account, args.namespace_id, sys.stdout.buffer)
    print(f"Exported {count} key(s).", file=sys.stderr)


if __name__ == "__main__":
    main()
