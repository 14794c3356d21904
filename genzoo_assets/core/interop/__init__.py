"""The dataset in other tools' layouts: Animal3D's JSON release (AniMer) and Hugging Face Parquet.

GenZoo's own trainer reads the WebDataset shards (``core.regressor.export``).
"""
