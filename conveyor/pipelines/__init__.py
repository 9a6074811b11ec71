"""Training pipelines: declarative, cached, reproducible, tunable, scalable on Ray."""
