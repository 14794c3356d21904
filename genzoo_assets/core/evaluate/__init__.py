"""evaluate stage of the pipeline."""
