"""What a widget request must pass before anything is asked of a model: the origin, the rate
limits (per address and per end user), the end user's quota and the embed's daily cap.

Quotas are budgets of the governance ledger in the ``end_user`` scope, one per embed and end
user (``widget:<embed id>:<end user>``), with a daily template holding the embed's limits: the
LLM gateway holds and charges every answer against it like any other budget, and
:func:`check_quota` refuses a visitor whose allowance is already spent before retrieval runs.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from automate_core.governance import budgets, ratelimit
from automate_core.governance.models import Budget
from widgets import tokens
from widgets.errors import DailyCapReached, OriginNotAllowed, RateLimited
from widgets.models import ChatEmbed, WidgetConversation, WidgetMessage
from widgets.origins import normalize_origin, origin_allowed


def check_origin(embed: ChatEmbed, origin: str | None) -> str:
    """The request's origin, canonical, if the embed allows it; :class:`OriginNotAllowed`
    otherwise (a request with no ``Origin`` header included)."""
    if origin is None or not origin_allowed(origin, list(embed.allowed_origins)):
        raise OriginNotAllowed(details={"origin": origin or ""})
    canonical = normalize_origin(origin)
    assert canonical is not None  # it matched a pattern
    return canonical


def check_preview_origin(embed: ChatEmbed, token: str, origin: str | None) -> str:
    """The admin origin of a valid preview ``token``, if the request comes from it (the
    embed's allowed origins do not matter then); :class:`OriginNotAllowed` otherwise."""
    allowed = tokens.read_preview_token(embed, token)
    if origin is None or normalize_origin(origin) != allowed:
        raise OriginNotAllowed(details={"origin": origin or ""})
    return allowed


def _hit(embed: ChatEmbed, kind: str, identity: str, rate: str) -> None:
    result = ratelimit.hit(f"widgets:{embed.pk}:{kind}", identity, rate)
    if not result.allowed:
        raise RateLimited(result.retry_after)


def check_address_rate(embed: ChatEmbed, address: str) -> None:
    _hit(embed, "ip", address, embed.ip_rate_limit)


def check_end_user_rate(embed: ChatEmbed, end_user: str) -> None:
    _hit(embed, "end_user", end_user, embed.user_rate_limit)


def quota_scope(embed: ChatEmbed, end_user: str) -> str:
    """The ``end_user`` budget scope id of ``end_user`` on ``embed`` (and the CallContext's)."""
    return f"widget:{embed.pk}:{end_user}"


def apply_quota(embed: ChatEmbed, end_user: str) -> None:
    """Give the end user's daily budget the embed's current limits (created on first use; an
    embed with no quota leaves none, or lifts the limits of one it had)."""
    rows = Budget.objects.for_tenant(embed.tenant_id).filter(
        scope_type=Budget.ScopeType.END_USER,
        scope_id=quota_scope(embed, end_user),
        period=Budget.Period.DAY,
    )
    limits = {"limit_tokens": embed.user_quota_tokens, "limit_cost": embed.user_quota_cost}
    if rows.update(**limits) or all(v is None for v in limits.values()):
        return
    Budget.objects.get_or_create(
        tenant_id=embed.tenant_id,
        scope_type=Budget.ScopeType.END_USER,
        scope_id=quota_scope(embed, end_user),
        period=Budget.Period.DAY,
        period_start=None,
        defaults=limits,
    )


def check_quota(embed: ChatEmbed, end_user: str) -> None:
    """``BudgetExceeded`` when a budget of the end user has nothing left (before anything is
    requested of it, so the amounts requested are zero). An embed with no
    quota skips the lookup (the gateway still applies any end-user budget when it holds the
    answer's estimate)."""
    if embed.user_quota_tokens is None and embed.user_quota_cost is None:
        return
    scope = (Budget.ScopeType.END_USER.value, quota_scope(embed, end_user))
    for budget in budgets.current_budgets(embed.tenant, [scope]):
        tokens = budget.spent_tokens + budget.reserved_tokens
        cost = budget.spent_cost + budget.reserved_cost
        if (budget.limit_tokens is not None and tokens >= budget.limit_tokens) or (
            budget.limit_cost is not None and cost >= budget.limit_cost
        ):
            raise budgets.BudgetExceeded(budget, tokens=0, cost=Decimal(0))


def admit_question(embed: ChatEmbed, conversation: WidgetConversation, text: str) -> WidgetMessage:
    """Store the visitor's question, unless the embed's daily cap is reached.

    With a cap, questions of one embed are admitted one at a time (its row is locked while it
    counts today's questions and stores this one), so concurrent visitors cannot pass it."""
    with transaction.atomic():
        if embed.daily_message_cap is not None:
            ChatEmbed.objects.select_for_update().filter(pk=embed.pk).values("pk").first()
            midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
            asked = WidgetMessage.objects.filter(
                embed=embed, role=WidgetMessage.Role.USER, created_at__gte=midnight
            ).count()
            if asked >= embed.daily_message_cap:
                raise DailyCapReached()
        return WidgetMessage.objects.create(
            tenant_id=embed.tenant_id,
            embed=embed,
            conversation=conversation,
            role=WidgetMessage.Role.USER,
            text=text,
        )
