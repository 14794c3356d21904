"""genzoo-assets: the Generative Zoo pipeline as a Dagster code location."""

__version__ = "0.1.0"
