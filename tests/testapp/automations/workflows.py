# automations/workflows.py
from pydantic import BaseModel

from automate_core.workflows import complete, event_workflow, step


@event_workflow(event_name="checkin_due", offset_minutes=-60)  # run 60m before check-in
class PreArrivalReminder:
    class Context(BaseModel):
        reservation_id: int

    @classmethod
    def create_context(cls, event=None):
        reservation = event.entity
        return cls.Context(reservation_id=reservation.id)

    @step(start=True)
    def run(self):
        # send reminder
        return complete()
