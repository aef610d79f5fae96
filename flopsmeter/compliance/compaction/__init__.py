"""Compaction: the JSON records of each date partition copied into Parquet, with a manifest that ties them back."""
