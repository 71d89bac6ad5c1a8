#!/usr/bin/env python
"""Load test of the Gradio app: latency of `/transfer` on loopback, one client alone and many at once.

    python benchmarks/benchmark_app.py                         # starts app.py on a free port, 20 clients
    python benchmarks/benchmark_app.py --clients 20 --requests_per_client 2 --json load.json
    python benchmarks/benchmark_app.py --url http://127.0.0.1:7860/   # an app that is already running
    python benchmarks/benchmark_app.py --clients 50 --requests_per_client 2 --hostile_per_client 1   # issue 13's goal

Every request is a full transfer (upload two photos, queue, run, download the results), sent the way a browser
does over Gradio's HTTP API with httpx (``--client http``, the default), or through ``gradio_client``
(``--client gradio_client``: its threads and polling cost the shared 2 cores about twice the app's own CPU per
transfer, so it measures the load generator as much as the app). The expression source is matplotlib's Grace
Hopper portrait and the target skimage's astronaut, both public domain. Latency is counted from submission to the downloaded result, so under load it
includes the time spent waiting in the queue. All clients are created first and then released together.

``--hostile_per_client K`` makes every client also send K transfers whose expression source is a hostile file
(in turn: a 2 KB JPEG whose header claims 7000x7000 pixels, a PNG claiming 30000x30000, a truncated JPEG, a text
file named .png); each must come back as the app's short error message, not a failure or a success. The peak
resident memory of the app process (with its children) is sampled every 50 ms with psutil while the load runs
(for ``--url``, pass ``--pid`` to watch an app started elsewhere). The figures end with a pass/fail line for
each goal of issue 13: all requests answered, p95 <= 10 s, >= 5 requests/s, peak RSS < 1.5 GB.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))  # `python benchmarks/benchmark_app.py` from a checkout

from benchmarks.app_clients import SESSIONS, PeakMemory, Refused, transfer_once  # noqa: E402
from benchmarks.benchmark import report_json  # noqa: E402


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_app(port: int, log_path: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    """Run ``python app.py`` on 127.0.0.1:``port``; stdout and stderr go to ``log_path``."""
    env = {
        **os.environ,
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        **(extra_env or {}),
    }
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, str(PROJECT_ROOT / "app.py")],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def wait_until_ready(
    url: str, process: subprocess.Popen | None, log_path: Path | None = None, timeout: float = 180.0
) -> None:
    """Poll the app's config route until it answers; fail early (with the log's tail) if the process dies."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path else ""
            raise RuntimeError(f"app.py exited with code {process.returncode} before serving:\n{tail}")
        try:
            if httpx.get(url.rstrip("/") + "/config", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def stop_app(process: subprocess.Popen) -> None:
    """Terminate the app process started by :func:`start_app` (and only it)."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wheel_photos(folder: Path) -> tuple[Path, Path]:
    """(expression source, identity target) PNGs of the public-domain faces that ship in wheels."""
    import matplotlib.cbook  # the app extra

    folder.mkdir(parents=True, exist_ok=True)
    source, target = folder / "grace_hopper.png", folder / "astronaut.png"
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as handle:
        Image.open(handle).convert("RGB").save(source)
    Image.fromarray(skimage.data.astronaut()).save(target)
    return source, target


def hostile_files(folder: Path) -> list[Path]:
    """Uploads the app must refuse with its own short message (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format="JPEG")
    jpeg = bytearray(buffer.getvalue())
    frame = jpeg.index(b"\xff\xc0")  # SOF0: length (2), precision (1), height (2), width (2)
    claims = bytearray(jpeg)
    claims[frame + 5 : frame + 9] = (7000).to_bytes(2, "big") * 2
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="PNG")
    png = bytearray(buffer.getvalue())
    png[16:24] = (30000).to_bytes(4, "big") * 2  # IHDR width and height
    png[29:33] = zlib.crc32(bytes(png[12:29])).to_bytes(4, "big")  # a crafted file keeps its CRC right
    files = {
        "claims_7000x7000.jpg": bytes(claims),
        "claims_30000x30000.png": bytes(png),
        "truncated.jpg": bytes(jpeg[: len(jpeg) // 2]),
        "notes.png": b"a shopping list, not a photo\n",
    }
    paths = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def percentiles(latencies: list[float]) -> dict[str, float]:
    """p50 / p95 / max in seconds (nearest-rank p95)."""
    ordered = sorted(latencies)
    rank95 = max(0, int(np.ceil(0.95 * len(ordered))) - 1)
    return {
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(ordered[rank95], 3),
        "max_s": round(ordered[-1], 3),
    }


def run_single(url: str, source: Path, target: Path, runs: int, download_dir: Path, client: str = "http") -> dict:
    """Sequential requests from one client (after one warm-up request)."""
    client = SESSIONS[client](url, download_dir)
    transfer_once(client, source, target)
    latencies = [transfer_once(client, source, target) for _ in range(runs)]
    return {"requests": runs, **percentiles(latencies)}


def run_load(
    url: str,
    source: Path,
    target: Path,
    clients: int,
    requests_per_client: int,
    download_dir: Path,
    hostile: list[Path] | None = None,
    hostile_per_client: int = 0,
    client: str = "http",
) -> dict:
    """``clients`` threads, each with its own session (``client``: a key of :data:`SESSIONS`), released together;
    every one sends ``requests_per_client`` transfers back to back, then ``hostile_per_client`` with a hostile
    source file (which must be refused with the app's message). Failures are collected, not raised."""
    sessions = [SESSIONS[client](url, download_dir / f"client{k}") for k in range(clients)]
    start_line = threading.Barrier(clients + 1)
    latencies: list[float] = []
    failures: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def client_loop(index: int, client) -> None:
        start_line.wait()
        for _ in range(requests_per_client):
            try:
                latency = transfer_once(client, source, target)
            except Exception as error:  # noqa: BLE001 -- a load test counts failures instead of stopping
                with lock:
                    failures.append(f"{type(error).__name__}: {error}")
            else:
                with lock:
                    latencies.append(latency)
        for turn in range(hostile_per_client):
            bad = hostile[(index * hostile_per_client + turn) % len(hostile)]
            try:
                transfer_once(client, bad, target)
            except Refused as error:
                with lock:
                    refused.append(f"{bad.name}: {error}")
            except Exception as error:  # noqa: BLE001
                with lock:
                    failures.append(f"{bad.name}: {type(error).__name__}: {error}")
            else:
                with lock:
                    failures.append(f"{bad.name}: accepted")

    threads = [threading.Thread(target=client_loop, args=(k, client), daemon=True) for k, client in enumerate(sessions)]
    for thread in threads:
        thread.start()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    counts = {"clients": clients, "requests": clients * requests_per_client, "hostile": clients * hostile_per_client}
    return _load_report(client, counts, latencies, refused, failures, wall)


def _load_report(
    client: str, counts: dict[str, int], latencies: list[float], refused: list[str], failures: list[str], wall: float
) -> dict:
    """:func:`run_load`'s figures: what was sent (``counts``: clients, requests, hostile) and what came back."""
    report = {
        "client": client,
        "clients": counts["clients"],
        "requests": counts["requests"],
        "succeeded": len(latencies),
        "hostile_requests": counts["hostile"],
        "hostile_refused": len(refused),
        "hostile_messages": sorted(
            set(message.split(":", 1)[0] + ":" + message.split(":", 1)[1][:90] for message in refused)
        ),
        "failures": failures,
        "wall_s": round(wall, 2),
        "throughput_per_s": round(len(latencies) / wall, 3),
    }
    return {**report, **percentiles(latencies)} if latencies else report


GOALS = {
    "all answered": lambda load: (
        load["succeeded"] == load["requests"] and load["hostile_refused"] == load["hostile_requests"]
    ),
    "p95 <= 10 s": lambda load: load.get("p95_s", float("inf")) <= 10.0,
    ">= 5 requests/s": lambda load: load["throughput_per_s"] >= 5.0,
    "peak RSS < 1.5 GB": lambda load: load.get("peak_rss_mb") is not None and load["peak_rss_mb"] < 1536,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--url", default=None, help="an app that is already running (default: start app.py on a free port)"
    )
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients")
    parser.add_argument("--requests_per_client", type=int, default=1)
    parser.add_argument(
        "--hostile_per_client", type=int, default=0, help="hostile uploads per client after its transfers"
    )
    parser.add_argument(
        "--client",
        choices=sorted(SESSIONS),
        default="http",
        help="how each visitor calls the app: httpx on Gradio's HTTP API (light, like a browser), or gradio_client",
    )
    parser.add_argument("--pid", type=int, default=None, help="with --url: the app's process id, for its peak memory")
    parser.add_argument(
        "--single_runs", type=int, default=5, help="sequential requests from one client first (0: skip)"
    )
    parser.add_argument("--concurrency", type=int, default=None, help="AIPGAN_CONCURRENCY for the started app")
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--app_log", default=None, help="keep the started app's log here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and return (and print) its figures."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aipgan-load-") as tmp:
        work = Path(tmp)
        source, target = wheel_photos(work / "photos")
        process = None
        url = args.url
        if url is None:
            url = f"http://127.0.0.1:{free_port()}/"
            extra = {"AIPGAN_CONCURRENCY": str(args.concurrency)} if args.concurrency else {}
            port = int(url.rsplit(":", 1)[1].strip("/"))
            process = start_app(port, work / "app.log", extra)
        try:
            wait_until_ready(url, process, work / "app.log")
            figures = {
                "url": url,
                "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            }
            if args.single_runs > 0:
                figures["single"] = run_single(url, source, target, args.single_runs, work / "single", args.client)
            with PeakMemory(process.pid if process is not None else args.pid) as memory:
                figures["load"] = run_load(
                    url,
                    source,
                    target,
                    args.clients,
                    args.requests_per_client,
                    work / "load",
                    hostile_files(work / "hostile"),
                    args.hostile_per_client,
                    args.client,
                )
            figures["load"]["peak_rss_mb"] = memory.peak_mb
            figures["goals"] = {name: ("pass" if check(figures["load"]) else "FAIL") for name, check in GOALS.items()}
        finally:
            if process is not None:
                stop_app(process)
                if args.app_log:
                    Path(args.app_log).write_bytes((work / "app.log").read_bytes())
    report_json(figures, args.json)
    return figures


if __name__ == "__main__":
    main()
