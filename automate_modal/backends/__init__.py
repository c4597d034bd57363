"""Where a job's function runs: one small interface (:mod:`automate_modal.backends.base`),
backends found through the entry-point group ``django_automate.modal.backends``."""
