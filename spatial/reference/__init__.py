"""The reference tables (departments, component classes, event categories, holidays): loading them from
CSV (load), the in-process cache every request reads (cache), the working calendar for deadlines (calendar)
and the packaged files with their licence (data/). Sits on store/; independent of access/."""
