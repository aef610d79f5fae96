"""Audit records: the pydantic model, the S3 key layout, the record store, digests and verification."""
