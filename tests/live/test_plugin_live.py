"""The plugin's fixtures and markers on real llama.cpp: the emulator, and a bare llama.cpp server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_dmr.emulator import EmulatorServer

from .conftest import MODEL, MODEL_TAG, SEED

pytestmark = pytest.mark.tier_live

LIVE_TESTS = f"""
import asyncio

import pytest

from pytest_dmr import errors

OPTIONS = dict(temperature=0, seed={SEED}, max_tokens=16)
PROMPT = "Name a fruit."


@pytest.mark.dmr_live
def test_generation_is_real_and_repeatable(dmr_adapter, dmr_runner):
    assert dmr_runner.live and dmr_adapter.backend == "live"

    async def scenario():
        first = await dmr_adapter.generate(PROMPT, **OPTIONS)
        second = await dmr_adapter.generate(PROMPT, **OPTIONS)
        pieces = [piece async for piece in dmr_adapter.stream_generate(PROMPT, **OPTIONS)]
        return first, second, pieces

    first, second, pieces = asyncio.run(scenario())
    assert first.strip()
    assert second == first
    assert len(pieces) > 1 and "".join(pieces) == first


def test_usage_adds_up(dmr_adapter):
    result = asyncio.run(dmr_adapter.chat([{{"role": "user", "content": PROMPT}}], **OPTIONS))
    usage = result.usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 < usage["completion_tokens"] <= 16


def test_embeddings(dmr_adapter):
    vectors = asyncio.run(dmr_adapter.embed(["left", "right"]))
    assert len(vectors) == 2 and len(vectors[0]) == 576 and vectors[0] != vectors[1]


def test_factory_takes_another_model_name(dmr_adapter_factory):
    adapter = dmr_adapter_factory(model="SmolLM2")
    assert asyncio.run(adapter.generate(PROMPT, **OPTIONS)).strip()


@pytest.mark.dmr_model("ai/smollm2:{MODEL_TAG}")
def test_marked_model_is_there(dmr_client):
    assert dmr_client.has_model("smollm2:{MODEL_TAG}")


def test_client_pulls_a_cached_model(dmr_client):
    result = dmr_client.pull("{MODEL}")
    assert result.cached is True


def test_unknown_model_is_a_model_not_found_error(dmr_adapter_factory):
    with pytest.raises(errors.ModelNotFoundError):
        asyncio.run(dmr_adapter_factory(model="ai/never-pulled").generate(PROMPT))
"""


@pytest.fixture(scope="module")
def plugin_emulator(live_catalog: Path) -> Iterator[EmulatorServer]:
    """An emulator of the plugin runs' own: their pulls must not change the session emulator's store."""
    with EmulatorServer(live_catalog, engine="llama") as server:
        server.pull(MODEL)
        yield server


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("DMR_DISCOVERY", "url,compose,host,desktop")
    for name in ("DMR_MODE", "DMR_URL", "MODEL_RUNNER_URL", "MODEL_RUNNER_HOST", "DMR_MODEL", "DMR_PULL"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_fixtures_and_markers_on_the_emulator(inner: pytest.Pytester, plugin_emulator: EmulatorServer) -> None:
    inner.makepyfile(test_live=LIVE_TESTS)
    result = inner.runpytest("-p", "dmr", "--dmr=live", f"--dmr-url={plugin_emulator.url}", "--dmr-pull", "-rA")
    result.assert_outcomes(passed=7)
    assert f"docker.io/ai/smollm2:{MODEL_TAG}" in [tag for model in plugin_emulator.store.models() for tag in model.tags]
    # the run says where it ran
    assert plugin_emulator.url.split("//")[1] in result.stdout.str()


def test_marked_model_skips_without_pulling_on_a_users_runner(
    inner: pytest.Pytester, plugin_emulator: EmulatorServer
) -> None:
    inner.makepyfile(
        test_marked="""
        import pytest

        @pytest.mark.dmr_model("ai/smollm2:NotThere")
        def test_needs_model(dmr_adapter):
            raise AssertionError("must not run")
        """
    )
    result = inner.runpytest("-p", "dmr", "--dmr=live", f"--dmr-url={plugin_emulator.url}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*ai/smollm2:NotThere*"])
    assert not any("NotThere" in tag for model in plugin_emulator.store.models() for tag in model.tags)


def test_fixtures_on_a_bare_llama_cpp_server(inner: pytest.Pytester, plain_llama: str) -> None:
    inner.makepyfile(
        test_bare=f"""
        import asyncio

        import pytest

        from pytest_dmr import errors


        def test_inference_works(dmr_adapter, dmr_runner):
            assert dmr_runner.live
            assert asyncio.run(dmr_adapter.generate("Say hi.", temperature=0, seed={SEED}, max_tokens=8)).strip()


        def test_management_says_not_a_model_runner(dmr_client):
            with pytest.raises(errors.NotAModelRunnerError) as caught:
                dmr_client.list_models()
            assert "not a Docker Model Runner" in str(caught.value)
        """
    )
    result = inner.runpytest("-p", "dmr", "--dmr=live", f"--dmr-url={plain_llama}/v1", "-rA")
    result.assert_outcomes(passed=2)
