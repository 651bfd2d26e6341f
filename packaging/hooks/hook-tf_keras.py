"""PyInstaller hook for tf_keras (Keras 2), which PixelLib's Mask R-CNN runs on.

TensorFlow reaches it lazily (`tf.keras` and `import tensorflow.keras` resolve into
`tf_keras.api._v2.keras` when TF_USE_LEGACY_KERAS=1), so import analysis alone misses most of it.
"""

from PyInstaller.utils.hooks import collect_submodules, copy_metadata


def _wanted(name: str) -> bool:
    return not name.startswith(("tf_keras.src.benchmarks", "tf_keras.src.tests"))


hiddenimports = collect_submodules("tf_keras", filter=_wanted)
datas = copy_metadata("tf_keras")
warn_on_missing_hiddenimports = False
