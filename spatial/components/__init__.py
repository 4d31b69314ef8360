"""Coded urban components (部件) and their owners: validated edits with revisions and history (edits). The
owners' registry (survey import, search, export) belongs here. Sits on access/ and reference/; independent of
grids/."""
