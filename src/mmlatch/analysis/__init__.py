"""Analysis: masks, plots, tables (built on finished runs)."""
