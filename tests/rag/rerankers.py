"""Re-rankers for tests, registered through AUTOMATE_RAG["RERANKERS"]."""


def reverse(query, items):
    return list(reversed(items))


def drop_all_but_security(query, items):
    return [i for i in items if i.metadata.get("topic") == "security"]
