"""Server programs the suite starts: the floor app and the MLflow/BentoML adapters."""
