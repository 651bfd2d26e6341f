"""Files on disk: LabelMe JSON, COCO JSON, images. No Qt, torch or TensorFlow."""
