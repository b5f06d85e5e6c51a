"""Server-test fixtures: a real uvicorn on a free loopback port (in a background thread), a small HTTP client,
and real fraud runs (a safe one and a LEAKY one) made by `adaptlab fraud run` on a small hand-made frame."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

import uvicorn  # noqa: E402

from adaptlab.cli import main  # noqa: E402
from adaptlab.serve.cli import bind  # noqa: E402

FAST_FRAUD_RUN = ["--epochs", "2", "--hidden", "8", "--quiet"]


class Client:
    """HTTP/1.1 to one server; every call opens its own connection, so threads may share a Client."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port

    def request(self, method: str, path: str, body=None, *, raw: bytes | None = None,
                headers: dict | None = None, chunks: list[bytes] | None = None) -> tuple[int, object]:
        """(status, parsed JSON body). ``body`` is sent as JSON, ``raw`` as given, ``chunks`` chunked."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            headers = {"Content-Type": "application/json", **(headers or {})}
            if chunks is not None:
                try:
                    connection.request(method, path, body=iter(chunks), headers=headers, encode_chunked=True)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server answered (413) and closed before the last chunk: its answer is still there
            else:
                data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
                connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            content_type = response.getheader("content-type", "")
            return response.status, (json.loads(payload) if "json" in content_type else payload.decode())
        finally:
            connection.close()

    def post(self, path: str, body=None, **kwargs) -> tuple[int, object]:
        return self.request("POST", path, body, **kwargs)

    def get(self, path: str) -> tuple[int, object]:
        return self.request("GET", path)


@contextlib.contextmanager
def running(app):
    """Serve ``app`` with uvicorn on 127.0.0.1:<free port> in a thread; yield a :class:`Client`."""
    listening = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Client(*listening.getsockname()[:2])
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listening.close()


@pytest.fixture(scope="session")
def serving():
    """``with serving(app) as client:`` runs ``app`` on a real uvicorn (see :func:`running`)."""
    return running


def fraud_run(folder: Path, data: Path, *flags: str) -> Path:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["fraud", "run", "--data", str(data), "--output-dir", str(folder), *FAST_FRAUD_RUN,
                     *flags]) == 0
    return Path(out.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="session")
def fraud_frame(make_frame):
    return make_frame(380, 20, seed=3)


@pytest.fixture(scope="session")
def fraud_runs(fraud_frame, tmp_path_factory) -> dict[str, Path]:
    """{"safe": a default run, "leaky": a paper-protocol (LEAKY) run}, both from `adaptlab fraud run`."""
    folder = tmp_path_factory.mktemp("fraud-runs")
    fraud_frame.to_csv(folder / "small.csv", index=False)
    return {"safe": fraud_run(folder / "runs", folder / "small.csv"),
            "leaky": fraud_run(folder / "runs", folder / "small.csv", "--resampler", "adasyn", "--adasyn-k", "10",
                               "--protocol", "paper")}


def _tiny_adapters():
    """tests/adapters/tiny_adapters.py: tiny random-init bases and LoRA adapters saved as `nli train` saves."""
    import importlib.util

    path = Path(__file__).parents[1] / "adapters" / "tiny_adapters.py"
    spec = importlib.util.spec_from_file_location("serve_tiny_adapters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny():
    """The tiny-adapter helpers: TASKS (nli3: pair/3 labels, sent2: single/2, topic4: pair/4), random_items..."""
    pytest.importorskip("peft")
    pytest.importorskip("adaptlab.adapters.registry")
    return _tiny_adapters()


@pytest.fixture(scope="session")
def tiny_family(tiny, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """A tiny random-init BERT base folder and its three adapter folders ({task: folder})."""
    return tiny.make_family(tmp_path_factory.mktemp("adapters"), "bert")


@pytest.fixture(scope="session")
def registry_folder(tiny_family) -> Path:
    """A saved registry folder: the tiny base with the three tiny task adapters."""
    from adaptlab.adapters.registry import AdapterRegistry

    base, adapters = tiny_family
    registry = AdapterRegistry.from_base(str(base))
    for name, folder in adapters.items():
        registry.add(name, folder)
    return registry.save(base.parent / "registry")


@pytest.fixture(scope="session")
def registry(registry_folder):
    """The registry the server tests serve, opened from its folder as `adaptlab serve --adapters` opens it."""
    from adaptlab.adapters.registry import AdapterRegistry

    return AdapterRegistry.open(registry_folder)
