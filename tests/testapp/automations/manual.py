# automations/manual.py
from pydantic import BaseModel

from automate_core.workflows import complete, engine, step, workflow  # noqa: F401


@workflow("reindex_listing")
class ReindexListing:
    class Context(BaseModel):
        listing_id: int

    @classmethod
    def create_context(cls, listing_id: int):
        return cls.Context(listing_id=listing_id)

    @step(start=True)
    def run(self):
        # do reindex now
        return complete()


# Start manually (tests/automate_core/workflows/test_guide_example.py does):
# engine.start("reindex_listing", listing_id=123)
