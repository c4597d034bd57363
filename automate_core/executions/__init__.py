"""Executions (runs of a workflow version) and their StepRuns."""
