"""Every format everywhere: the SDK client fixtures and dmr_environment, against the test's mock (the one
dmr_mock controls), the live stand-in, and a replayed cassette; dmr_runner's base URLs."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from plugin_helpers import make_ini
from plugin_standin import LIVE_ANSWER, StandIn

from pytest_dmr.cassettes import Cassette, RecordingTransport, save
from pytest_dmr.mock import MockModelRunner

SDK_TESTS = """
import asyncio

import pytest


@pytest.fixture
def scripted(dmr_mock):
    dmr_mock.reply("Bonjour from the mock.")
    return dmr_mock


def test_openai_chat_and_responses(scripted, dmr_openai):
    chat = dmr_openai.chat.completions.create(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}])
    assert chat.choices[0].message.content == "Bonjour from the mock."
    response = dmr_openai.responses.create(model="ai/smollm2", input="Hi")
    assert response.output_text == "Bonjour from the mock."
    pieces = [event.delta for event in dmr_openai.responses.create(model="ai/smollm2", input="Hi", stream=True)
              if event.type == "response.output_text.delta"]
    assert len(pieces) > 1 and "".join(pieces) == "Bonjour from the mock."
    assert [request.api for request in scripted.requests] == ["openai", "responses", "responses"]


def test_async_openai(scripted, dmr_async_openai):
    async def ask():
        stream = await dmr_async_openai.chat.completions.create(
            model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}], stream=True)
        return [chunk.choices[0].delta.content async for chunk in stream if chunk.choices and chunk.choices[0].delta.content]

    assert "".join(asyncio.run(ask())) == "Bonjour from the mock."


def test_anthropic(scripted, dmr_anthropic):
    message = dmr_anthropic.messages.create(model="ai/smollm2", max_tokens=32, messages=[{"role": "user", "content": "Hi"}])
    assert message.content[0].text == "Bonjour from the mock."
    with dmr_anthropic.messages.stream(model="ai/smollm2", max_tokens=32, messages=[{"role": "user", "content": "Hi"}]) as stream:
        assert "".join(stream.text_stream) == "Bonjour from the mock."
    assert scripted.last_request.api == "anthropic"


def test_ollama(scripted, dmr_ollama):
    answer = dmr_ollama.chat(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}], stream=False)
    assert answer.message.content == "Bonjour from the mock."
    pieces = [part.message.content for part in dmr_ollama.chat(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}], stream=True)]
    assert "".join(pieces) == "Bonjour from the mock."
    assert scripted.last_request.api == "ollama"


def test_async_anthropic(scripted, dmr_async_anthropic):
    async def ask():
        message = await dmr_async_anthropic.messages.create(model="ai/smollm2", max_tokens=32,
                                                            messages=[{"role": "user", "content": "Hi"}])
        async with dmr_async_anthropic.messages.stream(model="ai/smollm2", max_tokens=32,
                                                       messages=[{"role": "user", "content": "Hi"}]) as stream:
            pieces = [text async for text in stream.text_stream]
        return message.content[0].text, pieces

    text, pieces = asyncio.run(ask())
    assert text == "".join(pieces) == "Bonjour from the mock." and len(pieces) > 1
    assert [request.api for request in scripted.requests] == ["anthropic", "anthropic"]


def test_async_ollama(scripted, dmr_async_ollama):
    async def ask():
        answer = await dmr_async_ollama.chat(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}], stream=False)
        stream = await dmr_async_ollama.chat(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}], stream=True)
        return answer.message.content, [part.message.content async for part in stream]

    text, pieces = asyncio.run(ask())
    assert text == "".join(pieces) == "Bonjour from the mock." and len(pieces) > 1
    assert [request.api for request in scripted.requests] == ["ollama", "ollama"]


def test_without_dmr_mock_the_clients_get_the_run_s_backend(dmr_openai, dmr_runner):
    assert str(dmr_openai.base_url).rstrip("/") == dmr_runner.openai_base_url
    chat = dmr_openai.chat.completions.create(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}])
    assert chat.choices[0].message.content


def test_runner_base_urls(dmr_runner):
    assert dmr_runner.openai_base_url == dmr_runner.base_url and dmr_runner.openai_base_url.endswith("/engines/v1")
    assert dmr_runner.anthropic_base_url == dmr_runner.ollama_base_url == dmr_runner.root_url
"""


def mock_and_cassette(pytester: pytest.Pytester, name: str, answer: str) -> tuple[MockModelRunner, Cassette]:
    """A mock that replies ``answer``, and the cassette ``cassettes/<name>.json`` of the pytester suite
    (where a test recorded through the mock finds it)."""
    mock = MockModelRunner()
    mock.reply(answer)
    return mock, Cassette(path=pytester.path / "cassettes" / f"{name}.json")


def test_each_sdk_fixture_talks_to_the_test_s_mock(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_sdks=SDK_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr=mock", "-W", "error")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 8 on the mock"])


def test_the_sdk_fixtures_reach_the_live_runner(pytester: pytest.Pytester, standin: StandIn) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_sdks=f"""
def test_openai(dmr_openai, dmr_runner):
    assert dmr_runner.live and dmr_runner.anthropic_base_url == {standin.url!r}
    chat = dmr_openai.chat.completions.create(model="ai/smollm2", messages=[{{"role": "user", "content": "Hi"}}])
    assert chat.choices[0].message.content == {LIVE_ANSWER!r}
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--dmr-url={standin.url}", "-W", "error")
    result.assert_outcomes(passed=1)
    assert standin.count("POST", "/engines/v1/chat/completions") == 1


def test_the_async_sdk_fixtures_replay_a_cassette(pytester: pytest.Pytester) -> None:
    """A cassette recorded (here, from a mock) with the async Anthropic and Ollama SDKs replays through
    their fixtures with no runner: the recorded answers, chunk for chunk, backend replay."""
    anthropic, ollama = pytest.importorskip("anthropic"), pytest.importorskip("ollama")
    mock, cassette = mock_and_cassette(pytester, "test_async_sdks/test_replayed", "A recorded answer.")
    messages = [{"role": "user", "content": "Hi"}]

    async def record() -> None:
        transport = RecordingTransport(mock, cassette)
        async with anthropic.AsyncAnthropic(base_url=mock.base_url, api_key="k", http_client=httpx2.AsyncClient(transport=transport)) as claude:
            async with claude.messages.stream(model="ai/smollm2", max_tokens=32, messages=messages) as stream:
                assert "".join([text async for text in stream.text_stream]) == "A recorded answer."
        client = ollama.AsyncClient(host=mock.base_url, transport=RecordingTransport(mock, cassette))
        assert "".join([part.message.content async for part in await client.chat(model="ai/smollm2", messages=messages, stream=True)])
        await client._client.aclose()

    asyncio.run(record())
    save(cassette)
    make_ini(pytester)
    pytester.makepyfile(test_async_sdks="""
import asyncio


def test_replayed(dmr_async_anthropic, dmr_async_ollama, dmr_runner, request):
    messages = [{"role": "user", "content": "Hi"}]

    async def ask():
        async with dmr_async_anthropic.messages.stream(model="ai/smollm2", max_tokens=32, messages=messages) as stream:
            claude = [text async for text in stream.text_stream]
        llama = [part.message.content async for part in await dmr_async_ollama.chat(model="ai/smollm2", messages=messages, stream=True)]
        return claude, llama

    claude, llama = asyncio.run(ask())
    assert "".join(claude) == "".join(llama) == "A recorded answer." and len(claude) > 1 and len(llama) > 1
    assert not dmr_runner.live and dict(request.node.user_properties)["dmr_backend"] == "replay"
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr-discovery=url", "-W", "error")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 1 replayed, 0 on the mock"])


@pytest.mark.parametrize("fixture", ["dmr_async_anthropic", "dmr_async_ollama"])
def test_a_test_using_only_an_async_sdk_fixture_replays_its_cassette(pytester: pytest.Pytester, fixture: str) -> None:
    """The async fixtures concern the plugin as the others do: a test requesting nothing else gets
    its cassette (the per-test hooks prepare it), not the mock."""
    anthropic, ollama = pytest.importorskip("anthropic"), pytest.importorskip("ollama")
    mock, cassette = mock_and_cassette(pytester, "test_only/test_replayed", "A recorded answer.")
    messages = [{"role": "user", "content": "Hi"}]

    async def record() -> None:
        transport = RecordingTransport(mock, cassette)
        if fixture == "dmr_async_anthropic":
            async with anthropic.AsyncAnthropic(base_url=mock.base_url, api_key="k", http_client=httpx2.AsyncClient(transport=transport)) as claude:
                await claude.messages.create(model="ai/smollm2", max_tokens=32, messages=messages)
        else:
            client = ollama.AsyncClient(host=mock.base_url, transport=transport)
            await client.chat(model="ai/smollm2", messages=messages)
            await client._client.aclose()

    asyncio.run(record())
    save(cassette)
    make_ini(pytester)
    ask = ('(await sdk.messages.create(model="ai/smollm2", max_tokens=32, messages=messages)).content[0].text'
           if fixture == "dmr_async_anthropic" else '(await sdk.chat(model="ai/smollm2", messages=messages)).message.content')
    pytester.makepyfile(test_only=f"""
import asyncio


def test_replayed({fixture}, request):
    sdk, messages = {fixture}, [{{"role": "user", "content": "Hi"}}]

    async def ask():
        return {ask}

    assert asyncio.run(ask()) == "A recorded answer."
    assert dict(request.node.user_properties)["dmr_backend"] == "replay"
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr-discovery=url", "-W", "error")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 1 replayed, 0 on the mock"])


def test_dmr_environment_replays_a_cassette_to_app_clients(pytester: pytest.Pytester) -> None:
    """App code building its own OpenAI and Ollama clients from the environment gets the test's
    cassette through the served runner: the recorded answers, streamed, with no runner anywhere."""
    openai, ollama = pytest.importorskip("openai"), pytest.importorskip("ollama")
    mock, cassette = mock_and_cassette(pytester, "test_app/test_app_clients", "Served from the cassette.")
    messages = [{"role": "user", "content": "Hi"}]
    http = httpx2.Client(transport=RecordingTransport(mock, cassette))
    with openai.OpenAI(base_url=mock.openai_base_url, api_key="k", http_client=http) as chat:
        list(chat.chat.completions.create(model="ai/smollm2", messages=messages, stream=True))
    client = ollama.Client(host=mock.base_url, transport=RecordingTransport(mock, cassette))
    list(client.chat(model="ai/smollm2", messages=messages, stream=True))
    client._client.close()
    save(cassette)
    make_ini(pytester)
    pytester.makepyfile(test_app="""
import ollama
import openai


def test_app_clients(dmr_environment):
    messages = [{"role": "user", "content": "Hi"}]
    with openai.OpenAI() as chat:  # OPENAI_BASE_URL, OPENAI_API_KEY
        stream = chat.chat.completions.create(model="ai/smollm2", messages=messages, stream=True)
        pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
    local = [part.message.content for part in ollama.Client().chat(model="ai/smollm2", messages=messages, stream=True)]  # OLLAMA_HOST
    assert "".join(pieces) == "".join(local) == "Served from the cassette." and len(pieces) > 1 and len(local) > 1
    assert dmr_environment.backend == "replay" and dmr_environment.root_url.startswith("http://127.0.0.1:")
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr-discovery=url", "-W", "error")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["dmr: tests run 0 live, 1 replayed, 0 on the mock"])


def test_a_missing_sdk_skips_naming_the_package(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makeconftest("import sys\nsys.modules['anthropic'] = None\nsys.modules['ollama'] = None\n")
    pytester.makepyfile(test_missing="def test_a(dmr_anthropic):\n    pass\n\ndef test_o(dmr_ollama):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr=mock", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines([
        "*dmr_anthropic needs the anthropic package, which is not installed: pip install anthropic",
        "*dmr_ollama needs the ollama package, which is not installed: pip install ollama",
    ])


ENVIRONMENT_TESTS = """
import asyncio
import os

import anthropic
import ollama
import openai

from pytest_dmr import create_modelrunner_adapter


def app_clients():
    # What application code does: build its clients from the environment.
    return openai.OpenAI(), anthropic.Anthropic(), ollama.Client()


def test_app_clients_reach_the_test_s_mock(dmr_mock, dmr_environment):
    dmr_mock.reply("Served by the mock.")
    chat, claude, llama = app_clients()
    with chat, claude:
        assert chat.chat.completions.create(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}]).choices[0].message.content == "Served by the mock."
        stream = chat.chat.completions.create(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}], stream=True)
        pieces = [chunk.choices[0].delta.content for chunk in stream if chunk.choices and chunk.choices[0].delta.content]
        assert len(pieces) > 1 and "".join(pieces) == "Served by the mock."
        message = claude.messages.create(model="ai/smollm2", max_tokens=16, messages=[{"role": "user", "content": "Hi"}])
        assert message.content[0].text == "Served by the mock."
    assert llama.generate(model="ai/smollm2", prompt="Hi", stream=False).response == "Served by the mock."
    llama._client.close()
    adapter = create_modelrunner_adapter()
    assert asyncio.run(adapter.generate("Hi")) == "Served by the mock."
    adapter.close()
    assert [request.api for request in dmr_mock.requests] == ["openai", "openai", "anthropic", "ollama", "openai"]
    assert dmr_environment.backend == "mock" and dmr_environment.root_url.startswith("http://127.0.0.1:")
    assert os.environ["OPENAI_BASE_URL"] == dmr_environment.root_url + "/engines/v1"
    assert os.environ["MODEL_RUNNER_URL"] == os.environ["OLLAMA_HOST"] == os.environ["ANTHROPIC_BASE_URL"] == dmr_environment.root_url


def test_a_fault_drops_the_served_connection(dmr_mock, dmr_environment):
    from pytest_dmr.mock import Fault

    dmr_mock.fail(Fault.disconnect())
    with openai.OpenAI(max_retries=0) as chat:
        try:
            chat.chat.completions.create(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}])
        except openai.APIConnectionError:
            pass
        else:
            raise AssertionError("the dropped connection reached the client as an answer")


def test_the_next_test_gets_its_own_mock(dmr_mock, dmr_environment):
    with openai.OpenAI() as chat:
        answer = chat.chat.completions.create(model="ai/smollm2", messages=[{"role": "user", "content": "Hi"}])
    assert answer.choices[0].message.content != "Served by the mock."
    assert len(dmr_mock.requests) == 1
"""


def test_dmr_environment_serves_the_test_s_mock_to_app_clients(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_environment=ENVIRONMENT_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr=mock", "-W", "error")
    result.assert_outcomes(passed=3)


def test_dmr_environment_points_at_the_live_runner_and_records_through_the_served_one(
    pytester: pytest.Pytester, standin: StandIn, refused_url: str
) -> None:
    make_ini(pytester)
    pytester.makepyfile(test_environment=f"""
import openai

def test_live(dmr_environment):
    with openai.OpenAI() as chat:
        answer = chat.chat.completions.create(model="ai/smollm2", messages=[{{"role": "user", "content": "Hi"}}])
    assert answer.choices[0].message.content == {LIVE_ANSWER!r}
    assert dmr_environment.backend in ("live", "replay")
""")
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--dmr-url={standin.url}", "-W", "error",
                                          "-o", "dmr_record=none", "-s")
    plain.assert_outcomes(passed=1)
    recorded = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--dmr-url={standin.url}", "--dmr-record=once", "-W", "error")
    recorded.assert_outcomes(passed=1)
    assert (pytester.path / "cassettes" / "test_environment" / "test_live.json").is_file()
    replayed = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--dmr-discovery=url", "-W", "error")
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["dmr: tests run 0 live, 1 replayed, 0 on the mock"])
    assert standin.count("POST", "/engines/v1/chat/completions") == 2
