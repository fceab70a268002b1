"""Model families, one file each. Every module here is imported by the registry on first use."""
