"""Geometry without a database: SRIDs (srid), checked shapes and repairs (geometry), coordinate ranges
(coords) and bounding boxes (bbox). The bottom room: imports nothing of spatial/ but errors and codes."""
