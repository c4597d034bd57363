"""Celery app wired to Redis: the distributed executor for outbox jobs."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "automate_site.settings")

app = Celery("automate_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The outbox relay task lives in a subpackage, which autodiscovery of "<app>.tasks" misses.
app.autodiscover_tasks(["automate_core.outbox"])
