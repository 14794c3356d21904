"""text stage of the pipeline."""
