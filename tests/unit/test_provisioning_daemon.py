"""Provisioning inside the whole daemon (composition root, no Asterisk): its own listener, reload."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import aiohttp
import yaml

from callcenter import config
from callcenter.app import Daemon
from callcenter.features.provisioning.digest import ha1
from tests.unit.test_daemon import _config, _free_port, _write

MAC, PASSWORD = "000413aa0001", "daemon-prov-pw-1"


async def _get(port: int, name: str, auth: bool = True) -> tuple[int, str]:
    mw = (aiohttp.DigestAuthMiddleware(MAC, PASSWORD, preemptive=False),) if auth else ()
    async with aiohttp.ClientSession(middlewares=mw) as http:
        async with http.get(f"http://127.0.0.1:{port}/{name}") as r:
            return r.status, await r.text()


async def test_reload_adds_a_phone_and_refuses_to_move_the_listener(tmp_path: Path) -> None:
    """The daemon serves on provisioning.port apart from the API; a reload giving a phone its MAC serves
    it at once (an unknown MAC before); a reload moving the port is refused with its key."""
    data = _config(tmp_path)
    port = _free_port()
    data["provisioning"] = {"enabled": True, "bind": "127.0.0.1", "port": port}
    path = _write(tmp_path, data)
    d = Daemon(config.load(path), path)
    task = asyncio.create_task(d.run())
    try:
        for _ in range(300):
            if d.provisioning is not None and d.provisioning.port:
                break
            await asyncio.sleep(0.01)
        assert (await _get(port, f"{MAC}.xml"))[0] == 401  # not yet a known MAC
        data = copy.deepcopy(data)
        data["phones"]["2003"].update(mac=MAC, model="snom-d385",
                                      provisioning_ha1=ha1(MAC, "callcenter-provisioning", PASSWORD))
        path.write_text(yaml.safe_dump(data))
        assert await d.reload()
        status, body = await _get(port, f"{MAC}.xml")
        assert status == 200 and "test-secret-2003" in body
        assert d.sizes()["provisioning_sources"] == 1  # the unknown MAC asked before the reload
        data["provisioning"]["port"] = _free_port()
        path.write_text(yaml.safe_dump(data))
        assert not await d.reload()
        assert any("provisioning" in p for p in d.status()["config"]["last_reload"]["problems"])
    finally:
        d.stop()
        await asyncio.wait_for(task, 10)
