"""Data: reading tables, the target column, and (later) assets and checks."""
