"""The embeddable chat widget: source, build and the endpoints it talks to."""
