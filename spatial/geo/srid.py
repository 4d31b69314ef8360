"""Spatial reference systems used by gridlink, named once.

Storage is EPSG:4326 (longitude, latitude) everywhere. Metric work (areas, distances, partition checks) runs
in CGCS2000 / 3-degree Gauss-Kruger CM 120E (EPSG:4549), a conformal projection centred on Suzhou's
meridian; the query geometry is transformed, never an indexed column.
"""

WGS84 = 4326
WEB_MERCATOR = 3857
CGCS2000 = 4490
METRIC = 4549
