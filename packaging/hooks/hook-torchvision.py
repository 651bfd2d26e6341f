"""PyInstaller hook for torchvision, used instead of the pyinstaller-hooks-contrib one.

torchvision's compiled operators (`_C_stable.so` / `_C.so`, `.pyd` on Windows, and the image
decoders) are not imported: `torchvision.extension` finds them next to its own file and hands them
to `torch.ops.load_library`. Import analysis cannot see that, and without them the frozen program
fails with "operator torchvision::nms does not exist". So collect every dynamic library of the
package, in place, whatever it is named (PyInstaller's default patterns want `lib*.so` on Linux),
and keep the Python source (TorchScript compiles from source).
"""

from PyInstaller.utils.hooks import collect_dynamic_libs, copy_metadata

binaries = collect_dynamic_libs(
    "torchvision", search_patterns=["*.so", "*.so.*", "*.pyd", "*.dll", "*.dylib"]
)
datas = copy_metadata("torchvision")
module_collection_mode = "pyz+py"
