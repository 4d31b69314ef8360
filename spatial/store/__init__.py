"""Where the data lives: the engine and pools (db), the SQLAlchemy models (models/), hot and set-based SQL
(sql/), COPY streaming (copy), foreign-key checks around bulk loads (integrity), the embedded PostgreSQL +
PostGIS cluster (cluster) and backup / restore (backup). Imports only geo/ and the shared modules below it."""
