"""taxonomy stage of the pipeline."""
