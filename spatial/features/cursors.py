"""Keyset cursors live in spatial/store/cursors.py, below every room, so that the registry
(spatial/components/) pages its searches with them too; this name stays for the feature collections."""

from spatial.store.cursors import BIGINT, after, column_value, decode_cursor, encode_cursor, python_type_of

__all__ = ["BIGINT", "after", "column_value", "decode_cursor", "encode_cursor", "python_type_of"]
