"""DMR's other API formats as pure translators over the chat-completions core (DMR-PROTOCOL section 10).

``responses`` (OpenAI Responses, DMR's own translation layer), ``anthropic`` (Messages, which DMR
hands to llama.cpp: these are the shapes llama.cpp produces, for the mock) and ``ollama`` (DMR's
``/api/*`` layer). No I/O: the mock and the emulator feed them bodies and chunks and write out what
they return, so both serve the same bytes by construction.
"""
