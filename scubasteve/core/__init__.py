"""Plain data and geometry: no Qt, no torch, no TensorFlow (checked by tests/test_layers.py)."""
