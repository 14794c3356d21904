"""Domain core: pure Python/numpy/torch. Nothing below this package imports dagster."""
