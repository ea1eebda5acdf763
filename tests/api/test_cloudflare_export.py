"""examples/from-cloudflare/cf_export.py, as its README runs it, against a server speaking
Cloudflare's API (`edgekv serve`): its file imports into edgekv byte for byte."""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from pathlib import Path

import httpx

import edgekv
from tests.api.conftest import Central
from tests.servers import ROOT, clean_env

SCRIPT = ROOT / "examples" / "from-cloudflare" / "cf_export.py"


async def test_the_cloudflare_export_script_round_trips(
    shared_central: Central, tmp_path: Path
) -> None:
    central = shared_central
    headers = {"Authorization": f"Bearer {central.token}"}
    at = int(time.time()) + 3600
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        r = await http.post(central.namespaces, json={"title": "on cloudflare"})
        source = r.json()["result"]["id"]
        items = [
            {"key": "text", "value": "plain"},
            {"key": "bin", "value": base64.b64encode(b"\x80\xff\x00").decode(), "base64": True},
            {"key": "meta/é", "value": "x", "metadata": {"n": [1, 2]}, "expiration": at},
            *({"key": f"k{i:04}", "value": f"v{i}"} for i in range(1200)),  # two pages
        ]
        assert (await http.put(f"{central.namespaces}/{source}/bulk", json=items)).is_success
    out = tmp_path / "cf.ndjson"
    env = clean_env(
        {
            "CLOUDFLARE_API_TOKEN": central.token,
            "CLOUDFLARE_ACCOUNT_ID": central.account,
            "CLOUDFLARE_API_BASE_URL": central.api,
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--namespace-id",
        source,
        "--output",
        str(out),
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode == 0, err.decode()
    assert err.decode().strip() == "Exported 1203 key(s)."
    async with edgekv.open(central.url, token=central.token, account_id=central.account) as kv:
        copy = await kv.create_namespace("from cloudflare")
        result = await copy.import_from(out)
        assert result.written == 1203 and result.complete
        original = [e async for e in kv.namespace(source).export()]
        assert [e async for e in copy.export()] == original
