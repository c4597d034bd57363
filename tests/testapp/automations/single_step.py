# automations/single_step.py
from automate_core.events import Event, on_event


@on_event(event_name="reservation_confirmed")  # entity_type optional; omit unless filtering
def send_welcome_email(event: Event) -> None:
    reservation = event.entity  # noqa: F841  (fetches the Reservation instance)
    # do side-effect: email/webhook/etc.
