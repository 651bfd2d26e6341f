"""Mask R-CNN through PixelLib: whole-image instance segmentation with classes (TensorFlow).

- `segmenter`: `InstanceSegmenter`, the engine the window, the CLI and Ray actors call.
- `model`: what an `.h5` file holds (backbone, classes), configs, building the network.
- `weights`: Mask R-CNN models by name, through the weights manager (`scubasteve.weights`).
- `tf_runtime`: the one thread every TensorFlow call runs on (PixelLib switches to graph mode).
- `instances`: the `Instance` type and turning raw detections into box-local masks (no TensorFlow).
- `refine`: sharpening the 28x28 masks with a mask-proposal engine, keeping both.

TensorFlow is imported lazily, inside the functions that need it.
"""
