"""PyInstaller hook for PixelLib: its Mask R-CNN (TensorFlow) part.

Scuba Steve imports `pixellib.instance` inside functions; collect all of it. (PixelLib's PyTorch
back end and PyQt5, which PixelLib lists as a dependency but never imports, are excluded in
build_installer.spec.) The source is kept beside the bytecode because TensorFlow's AutoGraph
reads the source of Keras layer code when it converts it.
"""

from PyInstaller.utils.hooks import collect_submodules, copy_metadata

hiddenimports = collect_submodules("pixellib.instance")
datas = copy_metadata("pixellib")
module_collection_mode = "pyz+py"
