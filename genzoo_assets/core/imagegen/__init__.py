"""imagegen stage of the pipeline."""
