"""PyInstaller hook for TensorFlow, used instead of the pyinstaller-hooks-contrib one.

Why our own: the contrib hook also walks every submodule of Keras 3 (`keras`), and importing
`keras.src.backend.torch` in PyInstaller's helper process crashes it (segfault) when torch is
installed too. Scuba Steve uses Keras 2 (`tf_keras`) under PixelLib, so the bundle leaves Keras 3
out altogether (see docs/adr/0600-keras-3-left-out-of-the-bundle.md) and collects `tf_keras` in
its own hook. Everything else follows what TensorFlow needs frozen: all its submodules (its public
API is assembled lazily, so import analysis cannot see them), its data files without the C++
headers, and AutoGraph's source (AutoGraph reads Python source at run time).
"""

from PyInstaller.compat import is_linux
from PyInstaller.utils.hooks import (
    collect_data_files,
    collect_submodules,
    copy_metadata,
    logger,
)

#: Subpackages that only TensorFlow's own test suites import.
_TEST_PARTS = {"kernel_tests", "memory_tests", "tests"}


def _wanted(name: str) -> bool:
    # `tensorflow.keras` is an alias that TensorFlow's __path__ points at tf_keras (or Keras 3);
    # the real modules are collected by hook-tf_keras.py.
    if name == "tensorflow.keras" or name.startswith("tensorflow.keras."):
        return False
    return not _TEST_PARTS.intersection(name.split("."))


hiddenimports = collect_submodules("tensorflow", filter=_wanted)
hiddenimports += ["ml_dtypes", "tf_keras"]
warn_on_missing_hiddenimports = False

datas = collect_data_files(
    "tensorflow",
    excludes=[
        "include",  # C++ headers (430 MB) for building custom ops
        "xla_aot_runtime_src",
        # The two big libraries arrive as binaries through dependency analysis; not twice.
        "libtensorflow_framework.*",
        "libtensorflow_cc.*",
        "**/*.lib",
    ],
)
for _dist in ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos"):
    try:
        datas += copy_metadata(_dist)
        break
    except Exception:  # that distribution name is not installed; try the next
        continue
else:
    logger.warning("hook-tensorflow: no TensorFlow distribution metadata found")

module_collection_mode = {"tensorflow.python.autograph": "py+pyz"}

if is_linux:
    # Symlinks to these at the top of the bundle make TensorFlow misjudge its own location.
    bindepend_symlink_suppression = [
        "**/libtensorflow_cc.so*",
        "**/libtensorflow_framework.so*",
        "**/_pywrap_tensorflow_internal.so",
    ]
