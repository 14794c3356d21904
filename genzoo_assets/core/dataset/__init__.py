"""The dataset: splits, sample records, the WebDataset shards GenZoo's trainer reads (writer and
reader), and the same samples in Animal3D's (AniMer's) and Hugging Face's layouts.

The regressor, the evaluator and the exports all depend on this package, never the reverse.
"""
