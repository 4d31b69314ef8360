"""Grids of every level and special grids: where a point lies (locate), map reads (areas), partition checks
(topology), and edits that keep every community partitioned (edits for base grids, special_edits). Grid
planning belongs here. Sits on access/ and reference/; independent of components/."""
