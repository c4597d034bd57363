"""The developer guide's automations (docs/workflows.md), laid out as the guide lays them out
and changed only in their import paths; discovered at app ready like any app's."""
