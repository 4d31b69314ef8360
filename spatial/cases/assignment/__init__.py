"""Spatial auto-assignment (SPEC "Assignment rules"): the rules as one report sees them (rules), the owner by
flow (owner), and the same rules for big batches with in-process indexes (index, batch, duplicates), held
together with the SQL by parity tests."""
