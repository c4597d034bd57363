"""``manage.py rag_eval DIR``: evaluate retrieval on a BEIR-format dataset, end to end.

The corpus is stored as documents of an ``api`` source in the evaluation tenant (incremental:
a second run re-embeds nothing that did not change), indexed through the same build as any
endpoint, and every judged query goes through the endpoint's query service. Prints nDCG@10,
recall@100, MRR@10, HNSW recall@10 against exact search, and query latency.

``--sweep`` prints nDCG@10 of a grid of fusion settings (convex or RRF, RRF's k, vector and
keyword weights, candidates per side) beside the vector side alone, BM25 alone, rank_bm25's
BM25Okapi and a plain RRF of the vector side and BM25Okapi (:func:`rag.evaluation.sweep`), so
an operator picks ``retrieval_config`` from evidence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from automate_core.errors import AutomateError
from automate_core.management.base import DatabaseCommand
from automate_core.tenancy.models import Tenant
from rag import evaluation, indexing, services
from rag.management.commands.rag_sync import _Bar


class Command(DatabaseCommand):
    help = "Evaluate a RAG endpoint on a BEIR dataset (corpus.jsonl, queries.jsonl, qrels/)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--split", default="test", help="qrels file to use (default: test)")
        parser.add_argument("--tenant", default="rag-eval", help="tenant slug (created if new)")
        parser.add_argument("--name", help="source and endpoint slug (default: the dir name)")
        parser.add_argument("--provider", default="local", help="embedding provider")
        parser.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
        parser.add_argument("--top-k", type=int, default=100)
        parser.add_argument("--limit", type=int, help="evaluate the first N judged queries")
        parser.add_argument("--rebuild", action="store_true", help="build a new index version")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")
        parser.add_argument(
            "--sweep", action="store_true", help="print nDCG@10 of a grid of fusion settings"
        )
        parser.add_argument(
            "--fusion", default="convex,rrf", help="sweep: fusion methods (convex, rrf)"
        )
        parser.add_argument("--rrf-k", default="10,60", help="sweep: RRF k values (rrf only)")
        parser.add_argument(
            "--weights", default="1:1,1:0.5,0.5:1", help="sweep: vector:keyword weight pairs"
        )
        parser.add_argument("--candidates", default="20,100", help="sweep: candidates per side")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self._handle(options)
        except AutomateError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc

    def _bar(self, total: int | None, desc: str, unit: str) -> tqdm[Any]:
        return tqdm(total=total, desc=desc, unit=unit, file=self.stderr, mininterval=0.5)

    @staticmethod
    def _grid(options: dict[str, Any]) -> list[evaluation.FusionSetting]:
        try:
            grid = evaluation.fusion_grid(
                fusions=options["fusion"].split(","),
                rrf_ks=[int(k) for k in options["rrf_k"].split(",")],
                weights=[
                    (float(v), float(w))
                    for v, w in (pair.split(":") for pair in options["weights"].split(","))
                ],
                candidates=[int(c) for c in options["candidates"].split(",")],
            )
            for setting in grid:
                setting.config()  # in the ranges retrieval_config accepts
        except ValueError as exc:  # pydantic's ValidationError is one
            raise CommandError(f"bad sweep grid: {exc}") from exc
        return grid

    def _handle(self, options: dict[str, Any]) -> None:
        grid = self._grid(options) if options["sweep"] else []
        dataset = evaluation.load_beir(options["directory"], options["split"])
        name = options["name"] or options["directory"].resolve().name.lower()
        tenant, _ = Tenant.objects.get_or_create(
            slug=options["tenant"], defaults={"name": options["tenant"]}
        )
        endpoint = evaluation.prepare(
            tenant,
            name,
            provider=options["provider"],
            retrieval_config={"mode": options["mode"], "candidates": max(50, options["top_k"])},
        )

        with self._bar(dataset.corpus_size(), "store corpus", "doc") as bar:
            documents, changed = evaluation.ingest(endpoint, dataset, tick=bar.update)

        endpoint.refresh_from_db()
        progress = _Bar(name, self.stderr, True)
        try:
            if endpoint.live_version is None or options["rebuild"]:
                version = services.reindex(endpoint, progress=progress)
                if version.status != "live":
                    raise CommandError(f"the index build failed: {version.error}")
            elif changed:
                indexing.reconcile(endpoint.live_version, document_ids=changed, progress=progress)
        finally:
            progress.close()

        queries = min(len(dataset.qrels), options["limit"] or len(dataset.qrels))
        if options["sweep"]:
            with self._bar(queries, "queries", "q") as bar:
                table = evaluation.sweep(
                    endpoint, dataset, grid, limit=options["limit"], tick=bar.update
                )
            self.stdout.write(
                f"{dataset.root.name}: {documents} corpus documents, {queries} queries, "
                f"nDCG@10 ({options['provider']} vectors)"
            )
            width = max(len(row.label) for row in table)
            for row in table:
                self.stdout.write(f"  {row.label:<{width}}  {row.ndcg_at_10:.4f}")
            return

        with self._bar(queries, "queries", "q") as bar:
            report = evaluation.evaluate(
                endpoint, dataset, top_k=options["top_k"], limit=options["limit"], tick=bar.update
            )

        summary = report.summary()
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write(
            f"{report.dataset}: {documents} corpus documents, {report.chunks} chunks, "
            f"{report.queries} queries ({options['mode']}, {options['provider']})"
        )
        rows = [
            ("nDCG@10", report.ndcg_at_10),
            ("Recall@100", report.recall_at_100),
            ("MRR@10", report.mrr_at_10),
            ("HNSW recall@10 vs exact", report.hnsw_recall_at_10),
            ("query latency p50 (ms)", report.latency_ms_p50),
            ("query latency p99 (ms)", report.latency_ms_p99),
        ]
        for label, value in rows:
            self.stdout.write(f"  {label:<26} {value:.4f}")
