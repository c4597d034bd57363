"""The Django project that serves Django Automate; the apps never import it."""

from automate_site.celery import app as celery_app

__all__ = ["celery_app"]
