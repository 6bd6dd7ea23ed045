"""The request fields an OpenAI-compatible inference request may carry: OpenAI's own (chat
completions, completions, embeddings) and llama.cpp's extensions, which DMR passes through.

The adapter sends these as request options; any other keyword is a typo until proven otherwise
(``extra_body=`` sends fields outside this list unchecked)."""

from __future__ import annotations

OPENAI_FIELDS = frozenset({
    # chat completions
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs", "max_completion_tokens",
    "max_tokens", "messages", "metadata", "modalities", "model", "n", "parallel_tool_calls", "prediction",
    "presence_penalty", "prompt_cache_key", "reasoning_effort", "response_format", "safety_identifier", "seed",
    "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
    "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
    # completions
    "best_of", "echo", "prompt", "suffix",
    # embeddings
    "dimensions", "encoding_format", "input",
})

LLAMACPP_FIELDS = frozenset({
    "add_generation_prompt", "cache_prompt", "chat_template", "chat_template_kwargs", "dry_allowed_length",
    "dry_base", "dry_multiplier", "dry_penalty_last_n", "dry_sequence_breakers", "dynatemp_exponent",
    "dynatemp_range", "grammar", "grammar_lazy", "grammar_triggers", "id_slot", "ignore_eos", "json_schema",
    "lora", "min_keep", "min_p", "mirostat", "mirostat_eta", "mirostat_tau", "n_cmpl", "n_discard", "n_indent",
    "n_keep", "n_predict", "n_probs", "parse_tool_calls", "penalize_nl", "post_sampling_probs", "preserved_tokens",
    "reasoning_format", "repeat_last_n", "repeat_penalty", "response_fields", "return_progress", "return_tokens",
    "samplers", "t_max_predict_ms", "thinking_forced_open", "timings_per_token", "top_k", "top_n_sigma",
    "typical_p", "xtc_probability", "xtc_threshold", "embd_normalize",
})

REQUEST_FIELDS = OPENAI_FIELDS | LLAMACPP_FIELDS
"""Every request field the adapter sends without question."""
