"""Source model -> transformers model -> ONNX backbone. The only package that imports transformers."""

from __future__ import annotations

import datetime as _dt
import os
import socket
from importlib import metadata
from pathlib import Path

from ..artefacts import MODEL_FILE, TOKENIZER_FILE, WEIGHTS_FILE
from ..errors import ModelNotFoundError, NlpsuiteError
from ..fsutil import check_free

SUPPORTED = ("llama", "mistral", "qwen2", "qwen3")  # each has a parity test in tests/test_parity.py


def versions(*names: str) -> dict[str, str]:
    """The installed versions of the packages named (those not installed are left out), for manifests."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def save_graph(model, out: Path) -> None:
    """Write model.onnx with every weight in one external file (no 2 GB protobuf limit)."""
    import onnx

    onnx.save_model(
        model,
        str(out / MODEL_FILE),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=WEIGHTS_FILE,
        size_threshold=1024,
    )


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers; asked once so offline users wait seconds, not minutes."""
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0"):
        return False
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True  # a direct probe says nothing about a proxy: let huggingface_hub try
    try:
        socket.create_connection((urlparse(constants.ENDPOINT).hostname, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def check_folder(source: str) -> None:
    """Refuse, before transformers reads it, a local folder whose architecture only its own Python code
    (``auto_map``) could load: nlpsuite never runs code from model files."""
    import json

    config_file = Path(source) / "config.json"
    if not config_file.is_file():
        return
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NlpsuiteError(f"{config_file} is not readable JSON ({exc})") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type in SUPPORTED:
        return  # transformers' own class for it loads the weights; any shipped code is ignored
    supported = ", ".join(SUPPORTED)
    if isinstance(config, dict) and config.get("auto_map"):
        raise NlpsuiteError(
            f"{source} needs its own Python code (custom code, 'auto_map' in config.json) to load "
            f"{model_type!r} models, and nlpsuite never runs code from model files; supported: {supported}"
        )
    raise NlpsuiteError(f"architecture {model_type!r} is not supported yet (supported: {supported})")


def load_transformers(source: str, gguf_file: str | None = None):
    """Load (model, tokenizer) in fp32 from a folder, a GGUF file or a hub id (its local cache when offline)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # safetensors only: a pytorch_model.bin is a pickle, and model files may come from anyone. Nor is
    # a model's own Python code ever run: False (not None) also keeps transformers from asking the user.
    kwargs = {"gguf_file": gguf_file} if gguf_file else {"use_safetensors": True}
    kwargs["trust_remote_code"] = False
    if not os.path.exists(source) and not hub_reachable():
        kwargs["local_files_only"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kwargs)
    except OSError as exc:
        if os.path.exists(source):
            raise NlpsuiteError(f"could not load {source}: {str(exc).splitlines()[0]}") from None
        raise ModelNotFoundError(
            f"could not fetch {source!r} from the Hugging Face hub (offline, or no such model); "
            "download it elsewhere and pass the local folder or .gguf file with --model PATH"
        ) from None
    return model.eval(), tokenizer


def _special_ids(model, tokenizer) -> dict:
    eos = model.generation_config.eos_token_id if model.generation_config else None
    eos = eos if isinstance(eos, list) else [eos] if eos is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in eos:
        eos.append(tokenizer.eos_token_id)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos[0] if eos else 0)
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_ids": eos,
        "pad_token_id": pad,
        "bos_token": tokenizer.bos_token,
        "eos_token": tokenizer.eos_token,
    }


def generation_defaults(model) -> dict:
    """The sampling defaults the model ships (its generation_config), in SamplingParams' names: what generate
    and chat use for options left unset, as transformers does."""
    config = getattr(model, "generation_config", None)
    out = {}
    if config is not None and getattr(config, "do_sample", False):
        out = {k: getattr(config, k) for k in ("temperature", "top_k", "top_p") if getattr(config, k, None) is not None}
    penalty = getattr(config, "repetition_penalty", None)
    if penalty not in (None, 1.0):
        out["repetition_penalty"] = float(penalty)
    return out


def export_fp32(source: str, gguf_file: str | None, out: Path, progress=lambda msg: None, quiet=False) -> dict:
    """Write model.onnx (+ external weights), tokenizer.json; return the manifest fields."""
    if not gguf_file:
        check_folder(source)
    from transformers.utils import logging as hf_logging

    from .graph import kv_state_spec
    from .llama import build_graph, describe

    hf_logging.set_verbosity_error()
    if quiet:
        hf_logging.disable_progress_bar()

    progress("loading the source model with transformers")
    model, tokenizer = load_transformers(source, gguf_file)
    if model.config.model_type not in SUPPORTED:
        raise NlpsuiteError(
            f"architecture {model.config.model_type!r} is not supported yet (supported: {', '.join(SUPPORTED)})"
        )
    if not getattr(tokenizer, "backend_tokenizer", None):
        raise NlpsuiteError(f"{source}: no fast (tokenizers) tokenizer available for this model")
    weights = 4 * sum(p.numel() for p in model.parameters())  # fp32; tied weights are counted once
    check_free(out.parent, weights, "converting to ONNX")
    progress("building the ONNX graph")
    graph = build_graph(model)
    progress("writing ONNX weights")
    save_graph(graph, out)
    tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
    arch = describe(model.config)
    return {
        "architecture": arch,
        "state": kv_state_spec(arch["num_layers"], arch["num_kv_heads"], arch["head_dim"]),
        "special_tokens": _special_ids(model, tokenizer),
        "chat_template": tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None,
        "generation": generation_defaults(model),
        "precision": "fp32",
        "exporter": {
            "nlpsuite": versions("nlpsuite").get("nlpsuite", "dev"),
            **versions("torch", "transformers", "onnx", "gguf"),
        },
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
