"""Docker Model Runner's wire protocol, with no I/O: one module per layer of DMR.

The client, the adapter, the mock and the emulator all speak through these modules, so they
cannot drift apart. The reference they follow is ``DMR-PROTOCOL.md`` (read from
docker/model-runner's source). Importing this package imports nothing else: each caller imports
the layers it uses, so the pytest plugin pays only for what it needs.

- :mod:`~pytest_dmr.protocol.addresses`: default addresses; a runner URL split into root and OpenAI prefix
- :mod:`~pytest_dmr.protocol.routes`: DMR's paths and inference route matching
- :mod:`~pytest_dmr.protocol.model_names`: names normalised and compared as DMR does
- :mod:`~pytest_dmr.protocol.model_info`: models as the management API and the OpenAI list describe them
- :mod:`~pytest_dmr.protocol.encoding`: content types, compact JSON, Go's JSON, quoting, times and IDs
- :mod:`~pytest_dmr.protocol.openai_api`: the OpenAI formats (chat, completions, embeddings, chunks)
- :mod:`~pytest_dmr.protocol.request_fields`: the request fields OpenAI and llama.cpp define (the adapter's known options)
- :mod:`~pytest_dmr.protocol.responses_api`: OpenAI Responses, translated to and from chat (DMR's ``pkg/responses``)
- :mod:`~pytest_dmr.protocol.anthropic_api`: Anthropic Messages (DMR's checks, llama.cpp's shapes)
- :mod:`~pytest_dmr.protocol.ollama_api`: Ollama's ``/api/*``, translated to and from chat (DMR's ``pkg/ollama``)
- :mod:`~pytest_dmr.protocol.sse`: server-sent events
- :mod:`~pytest_dmr.protocol.pull_stream`: pull progress lines
- :mod:`~pytest_dmr.protocol.error_bodies`: DMR's error bodies and their mapping to :mod:`pytest_dmr.errors`
- :mod:`~pytest_dmr.protocol.engines_api`: backends, modes, ``/engines/*`` bodies, ``_configure`` and ``unload``
- :mod:`~pytest_dmr.protocol.durations`: Go durations and keep-alive values
- :mod:`~pytest_dmr.protocol.cors`: DMR's CORS middleware
- :mod:`~pytest_dmr.protocol.proxying`: what a stand-in in front of llama.cpp needs (hop-by-hop headers, crash bodies)
"""
