"""The `cvaekit serve` page under load: N concurrent clients on 127.0.0.1 generating,
comparing and walking through the page's HTTP API (gradio_client), against one served run.

For each phase (a number of clients, each sending up to a number of requests, for at most
`--duration` seconds) it prints requests per second, the median and 99th-percentile
latency and the errors; and the server's memory (RSS) at the start, after 100 and 2,000
requests and at the end, over all phases. The server is `cvaekit serve` in a process of
its own, from this checkout or from `--server-path` (another checkout, to measure before and
after side by side). Without RUN, quickstart is trained for one epoch into a temp folder.

    python benchmarks/serve_load.py --clients 16 32 64 --requests 20 40 20
    python benchmarks/serve_load.py RUN --clients 32 --requests 1000 --duration 120
    python benchmarks/serve_load.py --server-path /path/to/older/checkout ...
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.table import Table

import cvaekit  # noqa: F401  (before torch: it has OpenMP wait passively, so runs can share the cores)

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["sneaker", "bag", "coat", "dress", "trouser", "sandal", "shirt", "pullover", "ankle boot", "T-shirt/top"]
MARKS = (100, 2000)  # the server's memory is read after this many requests


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?", help="A run folder (default: quickstart trained for one epoch).")
    p.add_argument("--clients", type=int, nargs="+", default=[16, 32, 64], help="Clients at once, one phase each.")
    p.add_argument("--requests", type=int, nargs="+", default=[20], help="Requests per client, per phase (the last repeats).")
    p.add_argument("--duration", type=float, default=120.0, help="A phase's time limit in seconds (at most 600).")
    p.add_argument("-n", type=int, default=8, help="Images per grid (the page's default: 8).")
    p.add_argument("--mix", default="generate,compare,walk", help="The requests each client cycles through.")
    p.add_argument("--server-path", default=str(ROOT), help="The checkout whose `cvaekit serve` is measured.")
    p.add_argument("--serve-arg", action="append", default=[], help="An extra argument for `cvaekit serve`.")
    args = p.parse_args()
    if not all(1 <= c <= 256 for c in args.clients) or not all(1 <= r <= 10_000 for r in args.requests):
        p.error("--clients takes 1 to 256 and --requests 1 to 10,000")
    if not 1 <= args.duration <= 600:
        p.error("--duration takes 1 to 600 seconds")
    return args


def quick_run(folder: Path) -> str:
    from cvaekit.training import train

    return str(train(ROOT / "recipes" / "quickstart.yaml", overrides=["train.epochs=1", f"runs_dir={folder}"],
                     progress=False))


def rss_mib(pid: int) -> float:
    """The process's resident memory, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(args, run: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": args.server_path, "COLUMNS": "200"}
    server = subprocess.Popen([sys.executable, "-m", "cvaekit.cli", "serve", run, "--port", str(port),
                               "--device", "cpu", *args.serve_arg], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=5).close()
            return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise SystemExit("The server did not start:\n" + server.communicate()[0][-3000:])
            time.sleep(0.5)


def request(client, kind: str, label: str, i: int, n: int):
    word, other = WORDS[i % len(WORDS)], WORDS[(i + 3) % len(WORDS)]
    if kind == "generate":
        return client.predict(label, word, n, 1.0, i, api_name="/generate")
    if kind == "compare":
        return client.predict(word, n, 1.0, i, api_name="/compare")
    mode = "From one text to another (fixed z)"
    return client.predict(label, mode, word, other, i, i + 1, n, 1.0, api_name="/walk")


def cpu_seconds(pid: int) -> float:
    """The process's CPU time (user and system), from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


class Counter:
    """Requests done over all phases, and the server's memory at the marks."""

    def __init__(self, pid: int):
        self.pid, self.done, self.lock, self.memory = pid, 0, threading.Lock(), {"start": rss_mib(pid)}

    def tick(self) -> None:
        with self.lock:
            self.done += 1
            if self.done in MARKS:
                self.memory[f"after {self.done:,}"] = rss_mib(self.pid)


def phase(url: str, label: str, clients: int, per_client: int, args, counter: Counter) -> dict:
    """`clients` threads, each with its own gradio_client, each sending `per_client`
    requests (stopping at `--duration`); latencies of the successful ones and the errors."""
    from gradio_client import Client

    kinds = args.mix.split(",")
    made = [Client(url, verbose=False) for _ in range(clients)]  # connected before the clock starts
    latencies, errors, lock = [], [], threading.Lock()
    go, stop = threading.Event(), time.monotonic() + args.duration + 60  # placeholder until go

    def work(c: int) -> None:
        go.wait()
        for i in range(per_client):
            if time.monotonic() > stop:
                return
            start = time.perf_counter()
            try:
                request(made[c], kinds[(c + i) % len(kinds)], label, c * 1000 + i, args.n)
                with lock:
                    latencies.append(time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001  (a failed request is counted and named, the rest go on)
                with lock:
                    errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            counter.tick()

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    began = time.perf_counter()
    stop = time.monotonic() + args.duration
    go.set()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    for client in made:
        client.close()
    return {"clients": clients, "sent": len(latencies) + len(errors), "errors": errors, "wall": wall,
            "latencies": sorted(latencies)}


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def main() -> None:
    args = parse_args()
    from cvaekit.runtime.ports import free_port

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or quick_run(Path(tmp))
        port = free_port()
        server = start_server(args, run, port)
        url = f"http://127.0.0.1:{port}"
        try:
            from gradio_client import Client

            warm = Client(url, verbose=False)
            label = warm.view_api(print_info=False, return_format="dict")["named_endpoints"]["/generate"][
                "parameters"][0]["parameter_default"]
            for kind in args.mix.split(","):
                request(warm, kind, label, 0, args.n)
            counter = Counter(server.pid)
            cpu = (cpu_seconds(server.pid), own_cpu_seconds())
            results = [phase(url, label, clients, args.requests[min(i, len(args.requests) - 1)], args, counter)
                       for i, clients in enumerate(args.clients)]
            counter.memory["end"] = rss_mib(server.pid)
            counter.cpu = (cpu_seconds(server.pid) - cpu[0], own_cpu_seconds() - cpu[1])
        finally:
            server.terminate()
            server.communicate(timeout=30)
    report(console, args, results, counter)


def report(console: Console, args, results: list[dict], counter: Counter) -> None:
    load = os.getloadavg()
    table = Table(title=f"serve under load: {args.mix}, {args.n} images, through gradio_client "
                        f"({os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")
    for col in ("clients", "requests", "errors", "req/s", "median s", "p99 s", "max s", "wall s"):
        table.add_column(col, justify="right")
    for r in results:
        lat = r["latencies"]
        table.add_row(str(r["clients"]), str(r["sent"]), str(len(r["errors"])), f"{r['sent'] / r['wall']:.1f}",
                      f"{statistics.median(lat):.2f}" if lat else "-", f"{percentile(lat, 0.99):.2f}",
                      f"{lat[-1]:.2f}" if lat else "-", f"{r['wall']:.0f}")
    console.print(table)
    console.print("server RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in counter.memory.items())
                  + f" ({counter.done:,} requests in all)")
    server, clients = (1000 * c / max(1, counter.done) for c in counter.cpu)
    console.print(f"CPU per request: server {server:.0f} ms, the clients (gradio_client, this process) {clients:.0f} ms")
    if "after 100" in counter.memory and "after 2,000" in counter.memory:
        grew = counter.memory["after 2,000"] / counter.memory["after 100"] - 1
        console.print(f"growth from 100 to 2,000 requests: {grew:+.1%}")
    for r in results:
        for e in sorted(set(r["errors"]))[:5]:
            console.print(f"[red]{r['clients']} clients:[/] {e}", markup=True, highlight=False)


if __name__ == "__main__":
    main()
