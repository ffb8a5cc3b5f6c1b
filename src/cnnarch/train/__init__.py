"""cnnarch.train."""
