"""Modal GPU jobs: endpoints, jobs, backends and the GPU workflow step."""
