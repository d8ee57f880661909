"""`crm-local` answers a mistaken command with one line on stderr and exit status 2, as argparse
does, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_local import cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code: int, out: str, err: str, *words: str) -> None:
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("crm-local ")
    assert ": error: " in err
    assert "Traceback" not in err
    for word in words:
        assert word in err


def test_a_customer_token_without_a_customer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = run(capsys, "--state-dir", str(tmp_path), "token", "--role", "customer")
    assert_usage_error(*result, "--customer")
    assert not (tmp_path / "dev-secret").exists()  # refused before anything was made


def test_a_customer_token_with_a_customer_is_printed(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(
        capsys, "--state-dir", str(tmp_path), "token", "--role", "customer", "--customer", "c-1"
    )
    assert (code, err) == (0, "")
    assert out.count(".") == 2  # a JWT


def test_invoke_of_a_function_the_template_lacks(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    event.write_text("{}")
    result = run(capsys, "invoke", "NoSuchFunction", "--event", str(event))
    assert_usage_error(*result, "NoSuchFunction", "ApiFunction")


def test_invoke_with_a_missing_event_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.json"
    result = run(capsys, "invoke", "ApiFunction", "--event", str(missing))
    assert_usage_error(*result, str(missing), "No such file")


def test_invoke_with_an_event_file_that_is_not_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    event.write_text("httpMethod: GET\n")
    result = run(capsys, "invoke", "ApiFunction", "--event", str(event))
    assert_usage_error(*result, str(event), "not JSON")


def test_status_with_no_emulator_names_where_it_looked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(capsys, "--state-dir", str(tmp_path / "elsewhere"), "status")
    assert code == 1
    assert out == ""
    assert str(tmp_path / "elsewhere") in err
    assert "--state-dir" in err


def test_moving_the_clock_back_says_it_only_moves_forward(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    result = run(capsys, "--state-dir", str(tmp_path), "clock", "advance", "-1d")
    assert_usage_error(*result, "only moves forward", "-1d")
    assert list(tmp_path.iterdir()) == []  # nothing moved


def test_firing_a_schedule_the_template_lacks_names_the_ones_it_has(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedules = {
        "crm-SegmentsNightly": {
            "function": "SegmentPlannerFunction",
            "expression": "cron(0 18 * * ? *)",
            "input": {},
        }
    }
    monkeypatch.setattr(cli, "_running", lambda state_dir: {"schedules": schedules})  # fmt: skip
    result = run(capsys, "--state-dir", str(tmp_path), "fire", "crm-nope")
    assert_usage_error(*result, "no schedule crm-nope", "crm-SegmentsNightly")


def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path) -> None:
    """`crm-local outbox | head`: the pipe closes while it still writes."""
    import subprocess
    import sys

    flood = (
        "import sys\n"
        "from crm_local import cli\n"
        "def flood(args):\n"
        "    for _ in range(100_000):\n"
        "        print('x' * 80)\n"
        "    return 0\n"
        "cli.cmd_token = flood\n"
        f"sys.exit(cli.main(['--state-dir', {str(tmp_path)!r}, 'token', '--role', 'admin']))\n"
    )
    run = subprocess.Popen([sys.executable, "-c", flood], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)  # fmt: skip
    assert run.stdout is not None
    assert run.stderr is not None
    assert run.stdout.readline() == b"x" * 80 + b"\n"
    run.stdout.close()  # the reader goes away
    assert run.wait(timeout=60) == 1
    assert b"Traceback" not in run.stderr.read()
