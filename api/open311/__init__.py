"""Open311 GeoReport v2 at /open311/v2: routes, request fields (fields) and JSON / XML replies (format)."""
