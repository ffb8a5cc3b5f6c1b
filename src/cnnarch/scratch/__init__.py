"""cnnarch.scratch."""
