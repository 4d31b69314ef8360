"""The deterministic Suzhou demo: real district boundaries, generated towns, communities, base grids,
components and a year of cases run through the closed loop (same seed, same demo)."""
