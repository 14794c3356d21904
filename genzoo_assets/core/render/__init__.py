"""Control renders: normal-coloured RGB, depth, mask and Canny of the posed body, plus 2D annotations.

The package imports nothing itself: ``contact_sheet`` (PIL only) is read by the Dagster layer
when the definitions load, and pyrender comes in with ``renderer`` only in the steps that render.
"""
