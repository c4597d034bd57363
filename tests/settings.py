"""Test settings: the project's settings with fast password hashing and the test models."""

import os

from automate_site.settings import *  # noqa: F403
from automate_site.settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,  # noqa: F405
        "KEY_PREFIX": "automate-test",
    }
}

# A distinct name lets several test runs share the embedded server at once.
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("AUTOMATE_TEST_DB", "test_automate")}
