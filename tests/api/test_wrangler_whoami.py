"""`wrangler whoami` (the real CLI) against `edgekv serve`: it calls /user/tokens/verify,
/user, /accounts and (with the account set) /memberships; every one must answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import wrangler as wrangler_mod
from tests.api.conftest import Central
from tests.wrangler import Wrangler

pytestmark = pytest.mark.skipif(not wrangler_mod.available(), reason="node/npm not installed")


@pytest.mark.parametrize("with_account", [True, False])
def test_whoami(shared_central: Central, tmp_path: Path, with_account: bool) -> None:
    account = shared_central.account if with_account else None
    wrangler = Wrangler(shared_central.api, shared_central.token, account, tmp_path)
    out = wrangler.run("whoami").stdout
    assert "7003" not in out and "No route" not in out
    assert "You are logged in with an User API Token" in out
    assert "@edgekv.invalid" in out
    assert shared_central.account in out  # the account table
    as_json = wrangler.run("whoami", "--json").stdout
    payload = json.loads(as_json[as_json.index("{") :])
    assert payload["loggedIn"] is True
    assert [a["id"] for a in payload["accounts"]] == [shared_central.account]


def test_whoami_with_a_wrong_token_fails(shared_central: Central, tmp_path: Path) -> None:
    wrangler = Wrangler(shared_central.api, "not-a-token", shared_central.account, tmp_path)
    result = wrangler.run("whoami", check=False)
    assert result.returncode != 0
    assert "Authentication error" in result.stdout + result.stderr
