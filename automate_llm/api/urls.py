"""``/api/v1/llm/``: chat, prompts, usage, and the providers and model configs."""

from django.urls import URLPattern, URLResolver, re_path

from automate_core.api.routers import OptionalSlashRouter
from automate_llm.api.chat import ChatView
from automate_llm.api.prompts import PromptVersionViewSet, PromptViewSet
from automate_llm.api.providers import LLMModelConfigViewSet, LLMProviderViewSet
from automate_llm.api.usage import UsageReportView

router = OptionalSlashRouter()
router.register("providers", LLMProviderViewSet, basename="llm-provider")
router.register("models", LLMModelConfigViewSet, basename="llm-model")
router.register("prompts", PromptViewSet, basename="llm-prompt")
router.register(
    r"prompts/(?P<prompt>[^/.]+)/versions", PromptVersionViewSet, basename="llm-prompt-version"
)

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^chat/?$", ChatView.as_view(), name="llm-chat"),
    re_path(r"^usage/?$", UsageReportView.as_view(), name="llm-usage"),
    *router.urls,
]
