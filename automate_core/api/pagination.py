"""Cursor pagination (``?cursor=&limit=``): pages stay stable while rows are inserted."""

from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from automate_core.conf import automate_settings


class CreatedCursorPagination(CursorPagination):
    ordering = ("-created_at", "-pk")
    page_size_query_param = "limit"

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        try:
            wanted = int(raw) if raw is not None else int(automate_settings.DEFAULT_PAGE_SIZE)
        except ValueError:
            wanted = int(automate_settings.DEFAULT_PAGE_SIZE)
        return max(1, min(wanted, int(automate_settings.MAX_PAGE_SIZE)))
