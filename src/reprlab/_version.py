"""The package version, in a module of its own so that low layers (run directories record it) need not import
the package's top."""

__version__ = "0.1.0"
