"""Training PixelLib's Mask R-CNN on new classes (TensorFlow).

- `data`: COCO/LabelMe annotations to PixelLib's dataset, with the project's own augmentation
  (`augment`: PixelLib's path needs imgaug, which fails under numpy 2).
- `train`: the training run, checkpoints and registering the model.
- `pixellib_compat`: fixes for PixelLib's training path under current scikit-image.
"""
