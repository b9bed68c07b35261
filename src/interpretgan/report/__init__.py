"""Figures, tables and the report folder. Import the submodules (``report.figures``) directly."""
