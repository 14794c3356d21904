"""sampling stage of the pipeline."""
