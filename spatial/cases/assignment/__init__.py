"""Spatial auto-assignment (SPEC "Assignment rules"): the rules as one report sees them (rules), and the same
rules for big batches with in-process indexes (index, batch, duplicates), held together by parity tests."""
