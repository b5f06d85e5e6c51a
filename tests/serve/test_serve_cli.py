"""`adaptlab serve` as a user starts it: startup problems are one line (exit 2) before any port is bound, and a
real subprocess serves on the port it prints, answers, and stops cleanly on SIGINT."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from adaptlab.cli import main
from adaptlab.errors import AdaptlabError
from adaptlab.serve.cli import load_registry

ROOT = Path(__file__).resolve().parents[2]


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, captured.err
    return err


@pytest.mark.parametrize("argv, words", [
    ([], "nothing to serve: give --adapters FOLDER and/or --fraud-model RUN"),
    (["--fraud-model", "no/such/run"], "--fraud-model: run folder not found: no/such/run"),
    (["--adapters", "no/such/registry"], "--adapters: folder not found: no/such/registry"),
    (["--fraud-model", "RUN", "--max-batch", "0"], "--max-batch must be a positive integer, not 0"),
    (["--fraud-model", "RUN", "--max-text-chars", "-5", "--max-body-bytes", "0"],
     "--max-text-chars must be a positive integer, not -5; --max-body-bytes must be a positive integer, not 0"),
    (["--fraud-model", "RUN", "--batch-window-ms", "nan"], "--batch-window-ms must be between 0 and 1000, not nan"),
    (["--fraud-model", "RUN", "--port", "70000"], "--port must be between 0 and 65535, not 70000"),
])
def test_startup_problems_are_one_line(fraud_runs, capsys, argv, words):
    argv = [str(fraud_runs["safe"]) if a == "RUN" else a for a in argv]
    assert main(["serve", *argv]) == 2
    assert words in _one_line_error(capsys)


def test_leaky_fraud_model_is_refused_before_binding(fraud_runs, capsys):
    assert main(["serve", "--fraud-model", str(fraud_runs["leaky"]), "--port", "0"]) == 2
    err = _one_line_error(capsys)
    assert "LEAKY" in err and "--allow-leaky" in err


def test_a_port_in_use_is_one_line(fraud_runs, capsys):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--fraud-model", str(fraud_runs["safe"]), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in _one_line_error(capsys)


def test_adapter_run_folders_are_served_under_their_task_names(tiny_family, registry):
    _, adapters = tiny_family
    served = load_registry(list(adapters.values()))
    assert [(t.name, t.labels, t.input) for t in served.tasks()] == \
        [(f"bert-{t.name}", t.labels, t.input) for t in registry.tasks()]  # the fixtures name tasks by folder


def test_adapter_folders_that_cannot_be_served_together_are_one_line(tiny_family, registry_folder):
    _, adapters = tiny_family
    with pytest.raises(AdaptlabError, match=r"are both adapters for task 'bert-nli3'"):
        load_registry([adapters["nli3"], adapters["sent2"], adapters["nli3"]])
    with pytest.raises(AdaptlabError, match="one registry folder, or adapter run folders, not a mix"):
        load_registry([registry_folder, adapters["sent2"]])


def test_the_command_serves_on_the_port_it_prints_and_stops_on_interrupt(fraud_runs, fraud_frame, registry_folder):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "adaptlab", "serve", "--fraud-model", str(fraud_runs["safe"]),
                                "--adapters", str(registry_folder), "--port", "0"],
                               stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        seen = []  # loading the models may log first; the banner comes once the port is bound
        while not (match := re.search(r"3 task adapter\(s\) and fraud scoring on (http://127\.0\.0\.1:\d+) ",
                                      seen[-1] if seen else "")):
            seen.append(process.stderr.readline())
            assert seen[-1], "".join(seen)  # end of output: the server exited without its banner
        url = match.group(1)
        deadline = time.monotonic() + 60
        while True:  # bound is not yet accepting: wait for uvicorn's startup
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                    assert json.loads(response.read()) == {"status": "ok", "tasks": 3, "fraud": True}
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        row = {name: float(fraud_frame[name].iloc[0]) for name in fraud_frame.columns if name != "Class"}
        request = urllib.request.Request(f"{url}/v1/fraud/score", data=json.dumps({"transactions": [row]}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert len(json.loads(response.read())["results"]) == 1
        request = urllib.request.Request(f"{url}/v1/classify", data=json.dumps(
            {"task": "sent2", "text": "Nobody is outside."}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert set(json.loads(response.read())["probabilities"]) == {"negative", "positive"}
        with urllib.request.urlopen(f"{url}/openapi.json", timeout=5) as response:
            assert "/v1/fraud/score" in json.loads(response.read())["paths"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        rest = process.stderr.read()
        process.stderr.close()
    assert code == 0 and "Traceback" not in rest, rest
