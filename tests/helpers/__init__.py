"""Helpers shared by the tests: synthetic data, fake engines, Torch7 and Mask R-CNN files, input.

Import them as ``from helpers.<module> import ...`` (the tests folder is on the path under pytest).
Nothing here is collected as a test.
"""
