"""Request and response shapes of the RAG API (also what the OpenAPI schema shows)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from automate_core.api.usage import UsageSerializer
from rag.conf import rag_settings
from rag.models import KnowledgeSource
from rag.services import MAX_QUERY_CHARS


class QueryRequestSerializer(serializers.Serializer):
    query = serializers.CharField(max_length=MAX_QUERY_CHARS, trim_whitespace=True)
    top_k = serializers.IntegerField(required=False, min_value=1)
    filters = serializers.JSONField(
        required=False,
        help_text='Metadata filter, e.g. {"lang": "en", "year": {"$gte": 2024}}. The '
        "endpoint's access policy may force more.",
    )

    def validate_top_k(self, value: int) -> int:
        limit = int(rag_settings.MAX_TOP_K)
        if value > limit:
            raise serializers.ValidationError(f"at most {limit}")
        return value

    def validate_filters(self, value: Any) -> Any:
        if value is not None and not isinstance(value, dict):
            raise serializers.ValidationError("must be an object")
        return value


class DocumentRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField()
    title = serializers.CharField()
    # A declared field named like Field.source: DRF's metaclass moves it into the fields.
    source = serializers.CharField(help_text="The source's slug.")  # type: ignore[assignment]


class QueryResultItemSerializer(serializers.Serializer):
    chunk_id = serializers.UUIDField()
    text = serializers.CharField()
    title = serializers.CharField(help_text="Document title and heading path of the chunk.")
    score = serializers.FloatField(
        help_text="Fusion score (higher is better; see retrieval_config fusion)."
    )
    document = DocumentRefSerializer()
    metadata = serializers.JSONField()
    highlights = serializers.ListField(
        child=serializers.CharField(),
        help_text="HTML-escaped fragments with the query's words in <mark>.",
    )
    position = serializers.IntegerField(help_text="Position of the chunk in its document.")
    ranks = serializers.JSONField(help_text="Rank and score from each retriever.")


class IndexVersionRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    number = serializers.IntegerField()


class QueryResponseSerializer(serializers.Serializer):
    results = QueryResultItemSerializer(many=True)
    index_version = IndexVersionRefSerializer()
    timings = serializers.DictField(child=serializers.FloatField(), help_text="Milliseconds.")
    trace_id = serializers.CharField()
    strategy = serializers.JSONField(help_text="How the query was answered (hnsw or exact...).")


class AnswerRequestSerializer(QueryRequestSerializer):
    """``/query``'s body plus how to answer. The model and its options are the endpoint's
    (``retrieval_config.answer``): a key, perhaps a widget's public one, cannot choose them."""

    query = serializers.CharField(
        max_length=MAX_QUERY_CHARS, trim_whitespace=True, help_text="The question."
    )
    stream = serializers.BooleanField(
        default=False, help_text="Answer as Server-Sent Events (text/event-stream)."
    )
    end_user = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Your user the answer is for: the end_user budget of that id applies.",
    )


class CitationSerializer(serializers.Serializer):
    marker = serializers.IntegerField(help_text="The [n] in the answer: the n-th result.")
    chunk_id = serializers.UUIDField()
    title = serializers.CharField()
    document = DocumentRefSerializer()
    position = serializers.IntegerField()
    score = serializers.FloatField()


class AnswerResponseSerializer(serializers.Serializer):
    answer = serializers.CharField()
    outcome = serializers.ChoiceField(
        choices=["answered", "no_passages"],
        help_text="no_passages: nothing matched; no model was called and nothing charged.",
    )
    citations = CitationSerializer(many=True, help_text="In the order the answer cites them.")
    cited_documents = DocumentRefSerializer(many=True)
    unmatched_markers = serializers.ListField(
        child=serializers.IntegerField(),
        help_text="Markers in the answer that name no retrieved passage (not cited).",
    )
    results = QueryResultItemSerializer(many=True, help_text="The passages, numbered from 1.")
    index_version = IndexVersionRefSerializer()
    strategy = serializers.JSONField()
    usage = UsageSerializer()
    request_id = serializers.UUIDField(
        allow_null=True, help_text="The LLMRequest that records the call (null: no call)."
    )
    model = serializers.CharField(allow_blank=True)
    provider = serializers.CharField(allow_blank=True)
    finish_reason = serializers.CharField()
    timings = serializers.DictField(child=serializers.FloatField(), help_text="Milliseconds.")
    trace_id = serializers.CharField()


class HealthSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    problems = serializers.ListField(child=serializers.CharField())
    live_version = serializers.JSONField(allow_null=True)
    building_version = serializers.IntegerField(allow_null=True)
    sources = serializers.JSONField()


class DocumentPushSerializer(serializers.Serializer):
    """A document as JSON (``content`` text or ``content_base64`` bytes) or a multipart
    ``file`` upload."""

    external_id = serializers.CharField(
        max_length=1000, required=False, help_text="Your id; defaults to the file name."
    )
    content = serializers.CharField(required=False, trim_whitespace=False)
    content_base64 = serializers.CharField(required=False)
    file = serializers.FileField(required=False)
    content_type = serializers.CharField(max_length=200, required=False, allow_blank=True)
    title = serializers.CharField(max_length=500, required=False, allow_blank=True)
    metadata = serializers.JSONField(required=False)

    def validate_metadata(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be an object")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("content", "content_base64", "file") if k in attrs]
        if len(given) != 1:
            raise serializers.ValidationError("send exactly one of content, content_base64 or file")
        if "file" not in attrs and not attrs.get("external_id"):
            raise serializers.ValidationError({"external_id": "required without a file"})
        return attrs


class DocumentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField(help_text="ok, or failed (see error)")
    error = serializers.CharField()
    outcome = serializers.CharField(help_text="created, updated, unchanged or failed")


class SourceSerializer(serializers.ModelSerializer):
    documents = serializers.SerializerMethodField()
    failed_documents = serializers.SerializerMethodField()

    class Meta:
        model = KnowledgeSource
        fields = [
            "id", "slug", "name", "type", "sync_status", "sync_progress", "last_synced_at",
            "last_error", "documents", "failed_documents",
        ]  # fmt: skip

    def get_documents(self, source: KnowledgeSource) -> int:
        return source.get_documents().count()

    def get_failed_documents(self, source: KnowledgeSource) -> int:
        return source.get_documents().filter(status="failed").count()


class SyncAcceptedSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    trace_id = serializers.CharField()
