"""cnnarch.analysis."""
