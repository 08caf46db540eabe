"""Build a tiny, deterministic Qwen3-ASR checkpoint that a real vLLM server loads.

The checkpoint has the real Qwen3-ASR architecture
(``Qwen3ASRForConditionalGeneration``: a Whisper-style audio encoder feeding a Qwen3
decoder with M-RoPE) at a toy size (about 0.2 M parameters), its own byte-level BPE
tokenizer and a chat template.  Its weights are built, not trained, so that greedy (and,
thanks to huge logit margins, also sampled) decoding of *any* audio answers exactly::

    language {answer_language}<asr_text>{answer_text}

and then emits ``<|im_end|>`` (the EOS token).  How: the attention and MLP output
projections are zero, so the residual stream at every position is just the embedding of
the current token; the embeddings of the tokens of that answer are orthonormal basis
vectors and the untied LM head maps each of them to its successor (a lookup chain).
Every other token maps to ``<|im_end|>``.  The audio path (feature extraction, encoder,
placeholder expansion, M-RoPE positions) still runs for real; it just cannot change the
answer.

When the assistant turn is prefilled with ``language X<asr_text>`` (how a forced
language reaches the model), the last prompt token is ``<asr_text>``, whose successor is
the first token of ``answer_text``: the model then answers only the text, whatever ``X``
was.

This module needs ``torch``, ``transformers``, ``tokenizers`` and ``safetensors``: run
it with the vLLM environment's interpreter (see
:func:`tests.vllm_support.vllm_env.build_tiny_checkpoint`)::

    VENV/bin/python tests/vllm_support/tiny_qwen3_asr.py DEST \
        [--language English] [--text "hello world"]

It imports those packages lazily (through :mod:`importlib`) so that the gateway's own
type checking, which runs without them, stays clean.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import shutil
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "AUDIO_TOKENS_PER_100_FRAMES",
    "BUILDER_VERSION",
    "LANGUAGE_NAMES",
    "build_tiny_qwen3_asr",
    "main",
]

#: Bumped whenever the produced checkpoint changes (see ``asr_gateway_tiny.json``).
BUILDER_VERSION = 1

#: The audio encoder turns every 100 mel frames (1 s of 16 kHz audio) into 13 tokens.
AUDIO_TOKENS_PER_100_FRAMES = 13

#: Language names Qwen3-ASR writes after ``language `` (the official model's list).
LANGUAGE_NAMES = (
    "Arabic", "Cantonese", "Chinese", "Czech", "Danish", "Dutch", "English",
    "Filipino", "Finnish", "French", "German", "Greek", "Hindi", "Hungarian",
    "Indonesian", "Italian", "Japanese", "Korean", "Macedonian", "Malay", "Persian",
    "Polish", "Portuguese", "Romanian", "Russian", "Spanish", "Swedish", "Thai",
    "Turkish", "Vietnamese", "None",
)  # fmt: skip

_SEED = 1234
_HIDDEN = 64  # decoder width; also the number of orthonormal directions for the chain
_HEAD_DIM = 32  # the CPU attention backend accepts 32, 64, 80, ...
_NUM_HEADS = 2
_NUM_KV_HEADS = 1
_NUM_LAYERS = 2
_INTERMEDIATE = 128
_AUDIO_D_MODEL = 64
_AUDIO_HEADS = 2
_AUDIO_FFN = 128
_AUDIO_LAYERS = 1
_AUDIO_DOWNSAMPLE = 32
_NUM_MEL_BINS = 128
_LOGIT_SCALE = 50.0  # logits of the chosen successor: 50 * 8 = 400, every other token 0

_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|audio_start|>",
    "<|audio_end|>",
    "<|audio_pad|>",
)
_ASR_TEXT = "<asr_text>"

# Qwen2's pre-tokenizer split pattern.
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# Renders ChatML; an audio part becomes <|audio_start|><|audio_pad|><|audio_end|>.
# Handles both string content (vLLM's "string" content format, where vLLM inserts the
# placeholder itself) and lists of parts (the "openai" content format vLLM picks for
# this template).
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}"
    "{%- if message['content'] is string -%}"
    "{{- message['content'] -}}"
    "{%- else -%}"
    "{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}"
    "{{- part['text'] -}}"
    "{%- elif part['type'] in ['audio', 'audio_url', 'input_audio'] -%}"
    "{{- '<|audio_start|><|audio_pad|><|audio_end|>' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- endif -%}"
)


def _mod(name: str) -> Any:
    """Import ``name`` lazily; typed ``Any`` because the gateway's venv may lack it."""
    return importlib.import_module(name)


def _corpus(answer_language: str, answer_text: str) -> list[str]:
    """Training text for the BPE: frequent words end up as single tokens."""
    base = [
        "system user assistant",
        f"language {answer_language}{_ASR_TEXT}{answer_text}",
        answer_text,
        " ".join(f"language {name}" for name in LANGUAGE_NAMES),
        "The quick brown fox jumps over the lazy dog.",
        "Please transcribe the audio. Context: names, places, numbers 0123456789.",
    ]
    return base * 50


def _train_tokenizer(answer_language: str, answer_text: str) -> Any:
    tokenizers = _mod("tokenizers")
    pre = tokenizers.pre_tokenizers
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token=None, fuse_unk=False))
    tok.pre_tokenizer = pre.Sequence(
        [
            pre.Split(tokenizers.Regex(_QWEN2_SPLIT), behavior="isolated", invert=False),
            pre.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=2000,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(_corpus(answer_language, answer_text), trainer)
    added = tokenizers.AddedToken
    tok.add_special_tokens([added(s, special=True, normalized=False) for s in _SPECIAL_TOKENS])
    tok.add_tokens([added(_ASR_TEXT, special=False, normalized=False)])
    return tok


def _chain(token_ids: list[int], first: int, last_successor: int, tokens: dict[int, str]) -> dict[int, int]:
    """Map each token to its successor along ``first, *token_ids, last_successor``."""
    sequence = [first, *token_ids, last_successor]
    successor: dict[int, int] = {}
    for current, nxt in itertools.pairwise(sequence):
        if successor.get(current, nxt) != nxt:
            raise ValueError(
                "the answer cannot be built as a lookup chain: token "
                f"{tokens[current]!r} would need two different successors; "
                "choose another text"
            )
        successor[current] = nxt
    return successor


def build_tiny_qwen3_asr(
    dest: Path,
    *,
    answer_language: str = "English",
    answer_text: str = "hello world",
) -> Path:
    """Write the tiny deterministic Qwen3-ASR checkpoint into ``dest``; return it.

    ``dest`` is replaced if it exists.  The directory holds ``config.json``,
    ``model.safetensors``, ``generation_config.json``, ``preprocessor_config.json``,
    the tokenizer (``tokenizer.json``, ``tokenizer_config.json``),
    ``chat_template.jinja`` and ``asr_gateway_tiny.json`` (what was built, for tests).

    Raises ``ValueError`` if the answer cannot be expressed as a lookup chain (a token
    of it would need two different successors, or it has more tokens than the model
    is wide).
    """
    torch = _mod("torch")
    transformers = _mod("transformers")
    safetensors_torch = _mod("safetensors.torch")

    if "<|" in answer_text or _ASR_TEXT in answer_text or _ASR_TEXT in answer_language:
        raise ValueError("answer_language/answer_text must not contain special tokens")

    torch.manual_seed(_SEED)
    gen = torch.Generator().manual_seed(_SEED)

    # --- tokenizer ------------------------------------------------------------------
    tok = _train_tokenizer(answer_language, answer_text)
    vocab: dict[str, int] = tok.get_vocab(with_added_tokens=True)
    ids = {s: vocab[s] for s in (*_SPECIAL_TOKENS, _ASR_TEXT)}
    newline = vocab["\u010a"]  # byte-level "\n": the last token of "<|im_start|>assistant\n"
    tokens_by_id = {i: s for s, i in vocab.items()}

    answer = f"language {answer_language}{_ASR_TEXT}{answer_text}"
    answer_ids: list[int] = tok.encode(answer, add_special_tokens=False).ids
    if tok.decode(answer_ids, skip_special_tokens=True) != answer:
        raise ValueError(f"the tokenizer does not round-trip {answer!r}")
    successor = _chain(answer_ids, newline, ids["<|im_end|>"], tokens_by_id)
    # A forced language ends the prompt with <asr_text>: it already leads to the text.
    if ids[_ASR_TEXT] not in successor:
        raise ValueError("answer chain lost <asr_text>")  # cannot happen: it is in `answer`
    if len(successor) >= _HIDDEN:
        raise ValueError(f"answer too long for the tiny model ({len(successor)} tokens)")

    vocab_size = ((len(vocab) + 63) // 64) * 64

    hf_tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={
            "audio_token": "<|audio_pad|>",
            "audio_bos_token": "<|audio_start|>",
            "audio_eos_token": "<|audio_end|>",
        },
        model_max_length=131072,
    )
    hf_tok.chat_template = CHAT_TEMPLATE

    # --- weights --------------------------------------------------------------------
    def randn(*shape: int, std: float = 0.02) -> Any:
        return torch.randn(*shape, generator=gen, dtype=torch.float32) * std

    def ones(n: int) -> Any:
        return torch.ones(n, dtype=torch.float32)

    def zeros(*shape: int) -> Any:
        return torch.zeros(*shape, dtype=torch.float32)

    tensors: dict[str, Any] = {}

    # Audio encoder (Qwen3-Omni audio tower), random but fixed.
    a = "thinker.audio_tower."
    ds = _AUDIO_DOWNSAMPLE
    tensors[a + "conv2d1.weight"] = randn(ds, 1, 3, 3, std=0.1)
    tensors[a + "conv2d1.bias"] = zeros(ds)
    for name in ("conv2d2", "conv2d3"):
        tensors[a + f"{name}.weight"] = randn(ds, ds, 3, 3, std=0.05)
        tensors[a + f"{name}.bias"] = zeros(ds)
    freq_after_conv = (((_NUM_MEL_BINS + 1) // 2 + 1) // 2 + 1) // 2
    tensors[a + "conv_out.weight"] = randn(_AUDIO_D_MODEL, ds * freq_after_conv)
    for layer in range(_AUDIO_LAYERS):
        p = f"{a}layers.{layer}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            tensors[p + f"self_attn.{proj}.weight"] = randn(_AUDIO_D_MODEL, _AUDIO_D_MODEL)
            tensors[p + f"self_attn.{proj}.bias"] = zeros(_AUDIO_D_MODEL)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            tensors[p + f"{norm}.weight"] = ones(_AUDIO_D_MODEL)
            tensors[p + f"{norm}.bias"] = zeros(_AUDIO_D_MODEL)
        tensors[p + "fc1.weight"] = randn(_AUDIO_FFN, _AUDIO_D_MODEL)
        tensors[p + "fc1.bias"] = zeros(_AUDIO_FFN)
        tensors[p + "fc2.weight"] = randn(_AUDIO_D_MODEL, _AUDIO_FFN)
        tensors[p + "fc2.bias"] = zeros(_AUDIO_D_MODEL)
    tensors[a + "ln_post.weight"] = ones(_AUDIO_D_MODEL)
    tensors[a + "ln_post.bias"] = zeros(_AUDIO_D_MODEL)
    tensors[a + "proj1.weight"] = randn(_AUDIO_D_MODEL, _AUDIO_D_MODEL)
    tensors[a + "proj1.bias"] = zeros(_AUDIO_D_MODEL)
    tensors[a + "proj2.weight"] = randn(_HIDDEN, _AUDIO_D_MODEL)
    tensors[a + "proj2.bias"] = zeros(_HIDDEN)

    # Qwen3 decoder whose blocks add nothing to the residual (o_proj = down_proj = 0).
    m = "thinker.model."
    for layer in range(_NUM_LAYERS):
        p = f"{m}layers.{layer}."
        tensors[p + "input_layernorm.weight"] = ones(_HIDDEN)
        tensors[p + "post_attention_layernorm.weight"] = ones(_HIDDEN)
        tensors[p + "self_attn.q_proj.weight"] = randn(_NUM_HEADS * _HEAD_DIM, _HIDDEN)
        tensors[p + "self_attn.k_proj.weight"] = randn(_NUM_KV_HEADS * _HEAD_DIM, _HIDDEN)
        tensors[p + "self_attn.v_proj.weight"] = randn(_NUM_KV_HEADS * _HEAD_DIM, _HIDDEN)
        tensors[p + "self_attn.o_proj.weight"] = zeros(_HIDDEN, _NUM_HEADS * _HEAD_DIM)
        tensors[p + "self_attn.q_norm.weight"] = ones(_HEAD_DIM)
        tensors[p + "self_attn.k_norm.weight"] = ones(_HEAD_DIM)
        tensors[p + "mlp.gate_proj.weight"] = randn(_INTERMEDIATE, _HIDDEN)
        tensors[p + "mlp.up_proj.weight"] = randn(_INTERMEDIATE, _HIDDEN)
        tensors[p + "mlp.down_proj.weight"] = zeros(_HIDDEN, _INTERMEDIATE)
    tensors[m + "norm.weight"] = ones(_HIDDEN)

    # Embeddings: chain tokens get their own basis vector, all others the last one.
    default_dir = _HIDDEN - 1
    direction = {tid: k for k, tid in enumerate(sorted(successor))}
    embed = zeros(vocab_size, _HIDDEN)
    embed[:, default_dir] = 1.0
    lm_head = zeros(vocab_size, _HIDDEN)
    for tid, k in direction.items():
        embed[tid, default_dir] = 0.0
        embed[tid, k] = 1.0
        lm_head[successor[tid], k] = _LOGIT_SCALE
    lm_head[ids["<|im_end|>"], default_dir] = _LOGIT_SCALE
    tensors[m + "embed_tokens.weight"] = embed
    tensors["thinker.lm_head.weight"] = lm_head

    # --- write ----------------------------------------------------------------------
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)

    safetensors_torch.save_file(
        {k: v.contiguous() for k, v in sorted(tensors.items())},
        str(dest / "model.safetensors"),
        metadata={"format": "pt"},
    )
    hf_tok.save_pretrained(str(dest))

    config = {
        "architectures": ["Qwen3ASRForConditionalGeneration"],
        "model_type": "qwen3_asr",
        "dtype": "float32",
        "support_languages": list(LANGUAGE_NAMES[:-1]),
        "thinker_config": {
            "model_type": "qwen3_asr_thinker",
            "audio_token_id": ids["<|audio_pad|>"],
            "audio_start_token_id": ids["<|audio_start|>"],
            "audio_end_token_id": ids["<|audio_end|>"],
            "user_token_id": vocab.get("user", 0),
            "initializer_range": 0.02,
            "dtype": "float32",
            "audio_config": {
                "model_type": "qwen3_asr_audio_encoder",
                "num_mel_bins": _NUM_MEL_BINS,
                "encoder_layers": _AUDIO_LAYERS,
                "encoder_attention_heads": _AUDIO_HEADS,
                "encoder_ffn_dim": _AUDIO_FFN,
                "d_model": _AUDIO_D_MODEL,
                "activation_function": "gelu",
                "max_source_positions": 1500,
                "n_window": 50,
                "n_window_infer": 800,
                "conv_chunksize": 500,
                "downsample_hidden_size": _AUDIO_DOWNSAMPLE,
                "output_dim": _HIDDEN,
            },
            "text_config": {
                "model_type": "qwen3_asr_text",
                "vocab_size": vocab_size,
                "hidden_size": _HIDDEN,
                "intermediate_size": _INTERMEDIATE,
                "num_hidden_layers": _NUM_LAYERS,
                "num_attention_heads": _NUM_HEADS,
                "num_key_value_heads": _NUM_KV_HEADS,
                "head_dim": _HEAD_DIM,
                "hidden_act": "silu",
                "max_position_embeddings": 65536,
                "rms_norm_eps": 1e-6,
                "tie_word_embeddings": False,
                "rope_theta": 1000000.0,
                "rope_scaling": {
                    "rope_type": "default",
                    "mrope_section": [6, 5, 5],
                    "mrope_interleaved": True,
                    "interleaved": True,
                },
                "attention_bias": False,
                "bos_token_id": ids["<|endoftext|>"],
                "eos_token_id": ids["<|im_end|>"],
                "pad_token_id": ids["<|endoftext|>"],
            },
        },
    }
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    generation_config = {
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
        "pad_token_id": ids["<|endoftext|>"],
    }
    (dest / "generation_config.json").write_text(json.dumps(generation_config, indent=2) + "\n")
    preprocessor = {
        "feature_extractor_type": "WhisperFeatureExtractor",
        "processor_class": "Qwen3ASRProcessor",
        "feature_size": _NUM_MEL_BINS,
        "sampling_rate": 16000,
        "hop_length": 160,
        "n_fft": 400,
        "chunk_length": 30,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "return_attention_mask": True,
        "dither": 0.0,
    }
    (dest / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2) + "\n")
    info = {
        "builder_version": BUILDER_VERSION,
        "answer_language": answer_language,
        "answer_text": answer_text,
        "answer": answer,
        "answer_token_ids": answer_ids,
        "token_ids": ids,
        "vocab_size": vocab_size,
        "audio_tokens_per_second": AUDIO_TOKENS_PER_100_FRAMES,
    }
    (dest / "asr_gateway_tiny.json").write_text(json.dumps(info, indent=2) + "\n")
    return dest


def main(argv: list[str] | None = None) -> int:
    """Command line: ``tiny_qwen3_asr.py DEST [--language NAME] [--text TEXT]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--language", default="English", help="language the model 'detects'")
    parser.add_argument("--text", default="hello world", help="text the model 'hears'")
    args = parser.parse_args(argv)
    out = build_tiny_qwen3_asr(args.dest, answer_language=args.language, answer_text=args.text)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
