"""OGC API at /ogc: pygeoapi configured in code (build), gridlink's feature provider (provider), Part 4 edits
(edits), OGC API - Tiles (tiles) and the self-contained OpenAPI document (openapi)."""
