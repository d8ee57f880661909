"""Start `crm-local up` as a user would, on free ports, and talk to it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from crm_local.template import ROOT

CLI = [sys.executable, "-m", "crm_local.cli"]


@dataclass
class Running:
    api: str
    aws_endpoint: str
    state_dir: Path
    template: Path
    log: Path

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [*CLI, "--state-dir", str(self.state_dir), "--template", str(self.template), *args],
            capture_output=True, text=True, cwd=ROOT, timeout=120,
        )  # fmt: skip
        # A failing command says why in the test's report (its stderr), not only its status.
        assert out.returncode == 0, f"crm-local {' '.join(args)}: {out.returncode}\n{out.stderr}"
        return out.stdout.strip()

    def token(self, role: str, customer: str | None = None) -> str:
        return self.cli("token", "--role", role, *(["--customer", customer] if customer else []))

    def http(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        request = urllib.request.Request(  # noqa: S310 - 127.0.0.1
            self.api + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def aws(self, service: str) -> Any:
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )


def wait_for(check: Callable[[], Any], timeout: float = 60, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout}s: {check}")
        time.sleep(every)


def template_with(folder: Path, fragment: str, apps: dict[str, str]) -> Path:
    """template.yaml with `fragment` added to its resources, in `folder`, beside the project's
    code and `apps` (CodeUri folder -> app.py source)."""
    for name in ("functions", "layers"):
        (folder / name).symlink_to(ROOT / name)
    for code_uri, source in apps.items():
        (folder / code_uri).mkdir()
        (folder / code_uri / "app.py").write_text(source)
    text = (ROOT / "template.yaml").read_text()
    template = folder / "template.yaml"
    template.write_text(text.replace("\nResources:\n", "\nResources:\n" + fragment, 1))
    return template


@contextmanager
def start_emulator(template: Path, state_dir: Path, *flags: str) -> Iterator[Running]:
    log = state_dir / "emulator.log"
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [*CLI, "--state-dir", str(state_dir), "--template", str(template),
             "up", "--port", "0", *(flags or ("--no-persist",))],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
        )  # fmt: skip
        try:
            info_file = state_dir / "emulator.json"
            wait_for(lambda: info_file.exists() or process.poll() is not None, timeout=90)
            if process.poll() is not None:
                raise AssertionError("the emulator did not start:\n" + log.read_text())
            info = json.loads(info_file.read_text())
            yield Running(info["api"], info["aws_endpoint"], state_dir, template, log)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with start_emulator(ROOT / "template.yaml", tmp_path_factory.mktemp("crm-local")) as running:
        yield running
