"""The app's visitors for benchmarks/benchmark_app.py: one session per client (Gradio's HTTP API with httpx, or
``gradio_client``), a transfer timed, and the app's peak resident memory sampled while they run."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path


class PeakMemory:
    """Samples the resident memory of a process and its children every ``interval`` s in a thread; ``peak_mb``."""

    def __init__(self, pid: int | None, interval: float = 0.05) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        try:
            process = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                total = process.memory_info().rss + sum(
                    child.memory_info().rss for child in process.children(recursive=True)
                )
            except psutil.Error:
                break
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        if self.pid is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    @property
    def peak_mb(self) -> float | None:
        return round(self.peak / 2**20, 1) if self.peak else None


class Refused(Exception):
    """The app answered a transfer with its error message (what a hostile file must get)."""


class GradioClientSession:
    """One visitor through ``gradio_client`` (its own threads, polling and parsing: on the app's 2 cores it costs
    about twice the CPU the app spends on the transfer)."""

    def __init__(self, url: str, download_dir: Path) -> None:
        from gradio_client import Client

        self.client = Client(url, verbose=False, download_files=str(download_dir))

    def transfer(self, source: Path, target: Path) -> None:
        from gradio_client import handle_file
        from gradio_client.exceptions import AppError

        try:
            self.client.predict(
                handle_file(str(source)), handle_file(str(target)), 1.0, 0.0, True, 0, 0, api_name="/transfer"
            )
        except AppError as error:
            raise Refused(str(error)) from None


class HttpSession:
    """One visitor through Gradio's documented HTTP API with httpx, as a browser does it: upload both photos, queue
    `/transfer` (``/gradio_api/call/transfer``), follow its event stream, download the result photos."""

    def __init__(self, url: str, download_dir: Path) -> None:
        import httpx

        self.api = url.rstrip("/") + "/gradio_api"
        self.http = httpx.Client(timeout=600)
        # /transfer's inputs after the two photos, at the page's defaults (one per slider the model has)
        info = self.http.get(f"{self.api}/info")
        info.raise_for_status()
        parameters = info.json()["named_endpoints"]["/transfer"]["parameters"]
        self.settings = [parameter.get("parameter_default") for parameter in parameters[2:]]

    def transfer(self, source: Path, target: Path) -> None:
        with open(source, "rb") as first, open(target, "rb") as second:
            uploaded = self.http.post(f"{self.api}/upload", files=[("files", first), ("files", second)])
        uploaded.raise_for_status()
        photos = [{"path": path, "meta": {"_type": "gradio.FileData"}} for path in uploaded.json()]
        queued = self.http.post(f"{self.api}/call/transfer", json={"data": [*photos, *self.settings]})
        queued.raise_for_status()
        with self.http.stream("GET", f"{self.api}/call/transfer/{queued.json()['event_id']}") as events:
            text = "".join(events.iter_text())
        kind, _, data = text.partition("event: ")[2].partition("\ndata: ")
        payload = json.loads(data.strip().splitlines()[0]) if data.strip() else None
        if kind.strip() == "error":
            raise Refused((payload or {}).get("error") or "error without a message")
        if kind.strip() != "complete":
            raise RuntimeError(f"unexpected event stream: {text[:200]!r}")
        for output in payload:  # the result photos, as the page shows them
            if isinstance(output, dict) and output.get("url"):
                self.http.get(output["url"]).raise_for_status()


SESSIONS = {"http": HttpSession, "gradio_client": GradioClientSession}


def transfer_once(session, source: Path, target: Path) -> float:
    """One `/transfer` call at default settings; returns its latency in seconds."""
    start = time.perf_counter()
    session.transfer(source, target)
    return time.perf_counter() - start
