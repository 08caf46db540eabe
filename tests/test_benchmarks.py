"""The benchmarks that reach inside the gateway still measure what they say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.bench_hop import STAGES

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(module: str, *args: str) -> dict[str, Any]:
    """A benchmark's JSON result, run as a user runs it (writing nothing to benchmarks/results)."""
    run = subprocess.run(
        [sys.executable, "-m", module, *args, "--no-save"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout[run.stdout.index("{") :])
    return result


def test_bench_hop_times_every_stage_of_a_call() -> None:
    """On the instant stand-in: every stage has a time, and the stages fit inside the whole call."""
    result = run_benchmark("benchmarks.bench_hop", "--stand-in", "--requests", "30")
    stages = result["stages_p50_ms"]
    assert list(stages) == [label for _, _, label in STAGES]
    # each stamp follows the one before it, but the gateway may stamp "written" after the client has read it
    *in_order, _reaches_client = stages.values()
    assert all(value >= 0 for value in in_order), stages
    assert 0 < stages["the call to vLLM, as the gateway sees it"] < result["gateway_p50_ms"]
    assert sum(stages.values()) < 2 * result["gateway_p50_ms"]  # grouped per call: no stage spans two calls


def test_bench_asgi_runs_the_baseline_from_its_own_code() -> None:
    """The in-process benchmark times both, and its baseline imports the commit's gateway (it asserts so)."""
    result = run_benchmark("benchmarks.bench_asgi", "--requests", "20", "--rounds", "1", "--baseline", "HEAD")
    assert result["gateway_ms_per_request"] > 0
    assert result["baseline_ms_per_request"] > 0


def test_floor_proxy_answers_as_the_gateway_does(tmp_path: Path) -> None:
    """The floor under bench_vllm's gateway figures makes the same call to vLLM (on the SDK benchmark's
    instant stand-in) and leaves no WAV behind."""
    from benchmarks.bench_vllm import encoded_form
    from tests.server import free_port, live_server
    from tests.vllm_support.vllm_env import wait_healthy

    port = free_port()
    stand_in = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_sdk", "serve", str(port)], cwd=ROOT)
    media = tmp_path / "media"
    media.mkdir()
    try:
        wait_healthy(f"http://127.0.0.1:{port}", 30, process=stand_in, interval=0.1)
        env = {"VLLM_BASE_URLS": f"http://127.0.0.1:{port}/v1", "VLLM_MEDIA_DIR": str(media)}
        command = [sys.executable, "-m", "benchmarks.floor_proxy"]
        with live_server(tmp_path / "floor.log", env, command=command, cwd=ROOT) as proxy:
            form = encoded_form(("a.wav", (ROOT / "tests/data/speech/cards_001.wav").read_bytes()))
            request = urllib.request.Request(proxy.base_url + "/v1/asr/transcribe/audio", data=form["content"])
            request.add_header("Content-Type", form["headers"]["Content-Type"])
            with urllib.request.urlopen(request, timeout=10) as response:
                assert json.loads(response.read()) == {"text": "hello there"}
        assert list(media.iterdir()) == []
    finally:
        stand_in.terminate()
        stand_in.wait(10)


def test_cpu_share_finds_children_counts_their_cpu_and_pins_every_thread() -> None:
    """``benchmarks.cpu_share`` charges a process tree's CPU to it and can move all of it off a core."""
    from benchmarks.cpu_share import core_ticks, cpu_seconds, pin, process_tree

    busy_child = "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    busy_child += "end = time.monotonic() + 60\nwhile time.monotonic() < end: pass\n"
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys; subprocess.run([sys.executable, '-c', {busy_child!r}])"]
    )
    try:
        deadline = time.monotonic() + 30
        while len(tree := process_tree(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(tree) == 2, tree
        before = cpu_seconds(tree)
        time.sleep(1.0)
        assert cpu_seconds(tree) - before > 0.3  # the child spins; its CPU counts as the tree's
        assert len(core_ticks()) == os.cpu_count()
        child = tree[1]
        pin(tree, {0})
        threads = [int(task.name) for task in Path(f"/proc/{child}/task").iterdir()]
        assert len(threads) == 2
        assert all(os.sched_getaffinity(thread) == {0} for thread in threads)
    finally:
        for pid in reversed(process_tree(parent.pid)):
            os.kill(pid, 9)
        parent.wait(10)


def test_bench_noise_counts_each_kind_of_error_for_both_codes() -> None:
    """A short run: every noise level for both servers, and the errors add up to the WER."""
    result = run_benchmark(
        "benchmarks.bench_noise", "--seeds", "1", "--seconds", "20", "--snr", "10", "--baseline", "HEAD"
    )
    for server in ("gateway", "baseline"):
        assert set(result[server]) == {"clean", "snr_10_db"}
        for counted in result[server].values():
            assert counted["words"] > 30
            errors = counted["deleted"] + counted["inserted"] + counted["substituted"]
            assert counted["wer"] == round(errors / counted["words"], 4)


def test_bench_burst_refuses_the_requests_over_the_limit_undecoded() -> None:
    """A short burst: one place, a short queue; the others are refused, and only the admitted file is decoded."""
    result = run_benchmark(
        "benchmarks.bench_burst",
        "--clients",
        "3",
        "--minutes",
        "1",
        "--window",
        "60",
        "--places",
        "1",
        "--queue-seconds",
        "1",
    )
    burst = result["gateway"]
    assert burst["statuses"] == {"200": 1, "429": 2}
    assert burst["short_request"]["status"] == "200"
    assert burst["decoded_files"] == 2, "the admitted file and the short one, not the two refused"
    assert burst["first_429_s"] is not None
    assert burst["peak_rss_gib"] >= burst["idle_rss_gib"] > 0
