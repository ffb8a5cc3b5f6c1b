"""cnnarch.data."""
