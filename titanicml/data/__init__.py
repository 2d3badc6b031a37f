"""Data: reading tables, versioned assets, column profiles, data checks and the target."""
