"""Measuring: benchmarks behind `scubasteve bench ...` (they print measurements, never pass/fail)
and `scubasteve eval` (`evaluate`: COCO mask AP and mean best IoU of annotations against ground truth)."""
