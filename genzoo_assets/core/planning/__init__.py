"""Adaptive generation: a model of the regressor's error over the sampling factors, and a bounded
plan that spends the next round's samples where that error is high (:mod:`.plan`)."""
