"""Events: what happened, stored once, matched by rules to workflows."""
