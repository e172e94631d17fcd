"""The server itself: admin endpoints, cross-process control, the CLI, concurrency, streaming, shutdown."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import anthropic
import openai
import pytest

from tokenrate.simulator import RateLimitModel, SimulatedProvider, SimulatorClient, Step, UsagePlan
from tokenrate.simulator.__main__ import build_parser, rate_model_from

GPT = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
HI = [{"role": "user", "content": "hi"}]


def http(method: str, url: str, payload: object = None) -> tuple[int, dict, object]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read() or b"null")


def test_base_urls(sim) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.base_url)
    assert sim.port > 0
    assert sim.openai_base_url == sim.base_url + "/v1"
    assert sim.anthropic_base_url == sim.base_url
    assert sim.gemini_base_url == sim.base_url


def test_admin_endpoints(sim, oai) -> None:
    status, headers, body = http("GET", sim.base_url + "/_sim/health")
    assert status == 200
    assert body["simulated"] is True
    assert headers["x-tokenrate-simulated"] == "true"

    steps = [Step.rate_limited(retry_after=0.01, retry_after_ms=True).to_dict(), Step.ok().to_dict()]
    assert http("POST", sim.base_url + "/_sim/script", steps)[2] == {"queued": 2}
    assert http("POST", sim.base_url + "/_sim/usage", {"input": 7, "output": 3})[0] == 200
    assert sim.usage == UsagePlan(input=7, output=3)
    assert [s["kind"] for s in http("GET", sim.base_url + "/_sim/script")[2]] == ["rate_limited", "ok"]

    completion = oai.chat.completions.create(model=GPT, messages=HI)
    assert completion.usage.total_tokens == 10
    served = http("GET", sim.base_url + "/_sim/served")[2]
    assert [s["status"] for s in served] == [429, 200]
    assert served[1]["usage"]["input"] == 7
    assert served[1]["headers"]["x-stainless-retry-count"] == "1"

    assert http("POST", sim.base_url + "/_sim/reset", {})[0] == 200
    assert http("GET", sim.base_url + "/_sim/served")[2] == []
    assert http("POST", sim.base_url + "/_sim/usage", None)[0] == 200
    assert sim.usage is None


def test_admin_rejects_bad_input(sim) -> None:
    assert http("POST", sim.base_url + "/_sim/script", [{"kind": "explode"}])[0] == 400
    assert http("POST", sim.base_url + "/_sim/usage", {"input": -1})[0] == 400
    assert http("GET", sim.base_url + "/_sim/nope")[0] == 404
    assert sim.pending_steps == []


def test_simulator_client_drives_an_sdk_in_another_process(sim) -> None:
    control = SimulatorClient(sim.base_url)
    assert control.health()["status"] == "ok"
    control.set_usage(UsagePlan(input=21, output=4, cache_read=6))
    assert control.script(Step.rate_limited(retry_after=0.01, retry_after_ms=True)) == 1
    code = (
        "import openai\n"
        "c = openai.OpenAI()\n"
        "r = c.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'hi'}])\n"
        "print(r.usage.prompt_tokens, r.usage.prompt_tokens_details.cached_tokens)\n"
    )
    env = {**os.environ, "OPENAI_BASE_URL": sim.openai_base_url, "OPENAI_API_KEY": "sk-test"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["21", "6"]
    served = control.served()
    assert [(s.status, s.retry_count) for s in served] == [(429, 0), (200, 1)]
    assert served[1].usage == UsagePlan(input=21, output=4, cache_read=6)
    control.reset()
    assert control.served() == []


def test_unknown_paths_and_bad_bodies(sim) -> None:
    status, headers, body = http("POST", sim.base_url + "/v1/nonexistent", {"model": "x"})
    assert status == 404
    assert headers["x-tokenrate-simulated"] == "true"
    assert body["error"]["message"]
    assert http("GET", sim.base_url + "/v1/chat/completions")[0] == 404
    request = urllib.request.Request(
        sim.openai_base_url + "/chat/completions", data=b"{not json", headers={"content-type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    assert sim.served[-1].status == 400
    assert sim.served[-1].body is None


def test_concurrent_requests_are_served_in_parallel(sim) -> None:
    # Every request is held for a second; a server answering one at a time never has two in flight at once.
    sim.script(Step.delay(1.0, times=20))
    oai = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    claude = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x", max_retries=0)

    def call(i: int) -> int:
        if i % 2:
            return claude.messages.create(model=CLAUDE, max_tokens=20, messages=HI).usage.output_tokens
        return oai.chat.completions.create(model=GPT, messages=HI).usage.completion_tokens

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(call, range(20)))
    assert all(n > 0 for n in results)
    served = sim.wait_for_served(20)
    assert len(served) == 20
    assert all(s.status == 200 and s.complete for s in served)
    assert len({s.response_headers.get("x-request-id") or s.response_headers["request-id"] for s in served}) == 20
    assert most_in_flight(served) > 1  # not "all 20 at once": a loaded machine may start them late


def most_in_flight(served) -> int:
    """The largest number of requests the server held at the same moment."""
    edges = sorted([(s.started, 1) for s in served] + [(s.finished, -1) for s in served], key=lambda e: (e[0], e[1]))
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


def test_streams_are_written_incrementally_and_early_close_is_seen() -> None:
    model = RateLimitModel(rpm=1000, tpm=1_000_000, tokens_per_second=20)  # 40 tokens take 2 s to stream
    with SimulatedProvider(rate_limits=model, usage=UsagePlan(input=5, output=40)) as sim:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
        stream = client.chat.completions.create(model=GPT, messages=HI, stream=True)
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
        (served,) = sim.served
        assert served.finished is None  # the first chunk arrived while the server was still writing
        stream.close()
        (served,) = sim.wait_for_served(1)
        assert served.finished is not None
        assert served.complete is False


def test_stop_ends_in_flight_answers_and_idle_connections() -> None:
    sim = SimulatedProvider().start()
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model=GPT, messages=HI)  # leaves an idle keep-alive connection
    sim.script(Step.delay(60))
    errors: list[BaseException] = []

    def slow_call() -> None:
        try:
            client.chat.completions.create(model=GPT, messages=HI)
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=slow_call)
    caller.start()
    sim.wait_for_served(2, finished=False)
    sim.stop(timeout=10)
    caller.join(10)
    assert not caller.is_alive()
    assert sim.running is False
    assert len(errors) == 1
    assert isinstance(errors[0], openai.APIConnectionError)
    assert sim.served[-1].complete is False


def test_served_log_is_bounded() -> None:
    with SimulatedProvider(max_served=3) as sim:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
        for _ in range(5):
            client.chat.completions.create(model=GPT, messages=HI)
        assert len(sim.served) == 3


def test_cli_parser_and_rate_model() -> None:
    from tokenrate.cli import build_parser as tokenrate_parser

    args = tokenrate_parser().parse_args(["simulate", "--port", "0", "--rpm", "3", "--tokens-per-second", "50"])
    assert args.func.__module__ == "tokenrate.cli.simulate"
    model = rate_model_from(args)
    assert (model.rpm, model.tpm, model.tokens_per_second) == (3, 40_000, 50)
    assert rate_model_from(build_parser().parse_args([])) is None


def test_standalone_runs_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokenrate.simulator", "--port", "0", "--rpm", "5", "--overload-rate", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        while not lines or not lines[-1].startswith("Stop with Ctrl-C"):  # the banner, up to its last line
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            lines.append(line)
        assert "SIMULATED" in lines[0]
        url = re.search(r"http://127\.0\.0\.1:\d+", lines[1]).group(0)
        assert "5 RPM" in lines[1]
        assert SimulatorClient(url).health()["simulated"] is True
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=20)
        out = "".join(lines) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"OPENAI_BASE_URL={url}/v1" in out
    assert f"ANTHROPIC_BASE_URL={url}" in out
    assert "HttpOptions(base_url=" in out
    assert "stopped" in out


def test_serve_in_a_thread_until_stopped() -> None:
    import io

    from tokenrate.simulator.__main__ import serve

    out, ready, stop = io.StringIO(), threading.Event(), threading.Event()
    args = build_parser().parse_args(["--port", "0", "--usage", '{"input": 8, "output": 2}'])
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(serve(args, out=out, ready=ready, stop=stop)))
    runner.start()
    try:
        assert ready.wait(10)
        url = re.search(r"http://127\.0\.0\.1:\d+", out.getvalue()).group(0)
        client = openai.OpenAI(base_url=url + "/v1", api_key="sk-test")
        assert client.chat.completions.create(model=GPT, messages=HI).usage.total_tokens == 10
    finally:
        stop.set()
        runner.join(10)
    assert result == [0]
    assert "no rate limits enforced" in out.getvalue()
    assert out.getvalue().rstrip().endswith("stopped.")
