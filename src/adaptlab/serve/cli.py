"""``adaptlab serve``: task adapters and/or a fraud model over HTTP (FastAPI on uvicorn).

Everything that can be wrong with the flags or the model folders is reported in one line (exit 2) before
the server binds its port; the port is bound before uvicorn starts, so "address in use" is one line too.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from adaptlab.errors import AdaptlabError

DEFAULTS = {"host": "127.0.0.1", "port": 8000, "max_batch": 64, "max_text_chars": 2000,
            "max_body_bytes": 1_000_000, "batch_window_ms": 5.0}


def register(subparsers) -> None:
    serve = subparsers.add_parser(
        "serve", help="serve task adapters and/or a fraud model over HTTP",
        description="Serve text classification with the task adapters of a registry folder (POST /v1/classify) "
                    "and/or fraud scoring with a model saved by `adaptlab fraud run` (POST /v1/fraud/score). "
                    "API docs at /docs once running.")
    serve.add_argument("--adapters", type=Path, nargs="+", default=None, metavar="FOLDER",
                       help="a registry folder (one frozen base and its task adapters), or LoRA run folders written "
                            "by `adaptlab nli train --method lora` (each served under its task's name)")
    serve.add_argument("--fraud-model", type=Path, default=None, metavar="RUN",
                       help="a run folder written by `adaptlab fraud run` (or its model/ folder)")
    serve.add_argument("--allow-leaky", action="store_true",
                       help="serve a LEAKY fraud model (paper protocol, inflated test scores) instead of refusing")
    serve.add_argument("--host", default=DEFAULTS["host"],
                       help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 exposes it)")
    serve.add_argument("--port", type=int, default=DEFAULTS["port"], help="port (default: %(default)s; 0: any free)")
    serve.add_argument("--max-batch", type=int, default=DEFAULTS["max_batch"], metavar="N",
                       help="most items or transactions per request, and per model call (default: %(default)s)")
    serve.add_argument("--max-text-chars", type=int, default=DEFAULTS["max_text_chars"], metavar="N",
                       help="longest text accepted, in characters (default: %(default)s)")
    serve.add_argument("--max-body-bytes", type=int, default=DEFAULTS["max_body_bytes"], metavar="N",
                       help="largest request body accepted (default: %(default)s)")
    serve.add_argument("--batch-window-ms", type=float, default=DEFAULTS["batch_window_ms"], metavar="MS",
                       help="how long a request waits for others to share its forward pass (default: %(default)s)")
    serve.set_defaults(handler=run_server)


def run_server(args: argparse.Namespace) -> int:
    import uvicorn

    from adaptlab.serve.app import ServeLimits, create_app

    limits = ServeLimits(args.max_batch, args.max_text_chars, args.max_body_bytes, args.batch_window_ms)
    problems = limits.problems()
    if not 0 <= args.port <= 65535:
        problems.append(f"--port must be between 0 and 65535, not {args.port}")
    if args.adapters is None and args.fraud_model is None:
        problems.append("nothing to serve: give --adapters FOLDER and/or --fraud-model RUN")
    if problems:
        raise AdaptlabError("; ".join(problems))
    fraud = load_fraud(args.fraud_model, args.allow_leaky) if args.fraud_model is not None else None
    registry = load_registry(args.adapters) if args.adapters is not None else None
    listening = bind(args.host, args.port)
    host, port = listening.getsockname()[:2]
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    served = [f"{len(registry.tasks())} task adapter(s)"] if registry is not None else []
    served += ["fraud scoring"] if fraud is not None else []
    print(f"adaptlab serve: {' and '.join(served)} on http://{_url_host(host)}:{port} (docs: /docs)",
          file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(registry, fraud, limits), log_level="info",
                                           timeout_graceful_shutdown=10))
    try:
        server.run(sockets=[listening])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown: the normal way to stop
        pass
    return 0


def load_fraud(run_dir: Path, allow_leaky: bool):
    from adaptlab.serve.fraud import ServedFraudScorer

    return ServedFraudScorer.load(run_dir, allow_leaky=allow_leaky)


def load_registry(folders: list[Path]):
    """One registry folder opened as saved, or adapter run folders registered on the base they were trained on."""
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise AdaptlabError(f"--adapters: folder not found: {', '.join(missing)}")
    from adaptlab.adapters.adapter_files import task_of
    from adaptlab.adapters.registry import AdapterRegistry
    from adaptlab.adapters.store import is_registry
    from adaptlab.nli.artifacts import read_meta, trained_model_dir

    if len(folders) == 1 and is_registry(folders[0]):
        return AdapterRegistry.open(folders[0])
    if any(map(is_registry, folders)):
        raise AdaptlabError("--adapters takes one registry folder, or adapter run folders, not a mix")
    names, bases = {}, {}
    for folder in folders:
        meta = read_meta(trained_model_dir(folder))
        name = task_of(meta, folder)["name"]
        if name in names:
            raise AdaptlabError(f"--adapters: {names[name]} and {folder} are both adapters for task {name!r}; "
                                "serve them from a registry folder under names of your choice")
        names[name], bases[folder] = folder, meta.get("base_model")
    if len(set(bases.values())) != 1 or None in bases.values():
        shown = "; ".join(f"{folder}: {base or 'none recorded'}" for folder, base in bases.items())
        raise AdaptlabError(f"--adapters: the adapters must share one recorded base model ({shown})")
    registry = AdapterRegistry.from_base(next(iter(bases.values())))
    for name, folder in names.items():
        registry.add(name, folder)
    return registry


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or a one-line error."""
    try:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                      flags=socket.AI_PASSIVE)[0]
        return socket.create_server(address, family=family, backlog=2048)
    except OSError as exc:
        raise AdaptlabError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
