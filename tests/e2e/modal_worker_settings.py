"""Settings of the Modal crash test's workers: no callback (results are found by the poll),
quick polls, and intents orphaned after two seconds so a lost spawn is retried within the test.
"""

from tests.settings import *  # noqa: F403

AUTOMATE_MODAL = {
    "CALLBACK_BASE_URL": "",
    "POLL_INITIAL_SECONDS": 0.2,
    "POLL_MAX_SECONDS": 0.5,
    "ORPHAN_AFTER_SECONDS": 2.0,
}
