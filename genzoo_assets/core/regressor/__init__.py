"""regressor stage of the pipeline."""
