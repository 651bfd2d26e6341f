"""Runtime hook of the frozen Scuba Steve: runs before any of the program's own code.

The bundle carries Keras 2 (tf_keras) and not Keras 3, so TensorFlow must always be told to use the
legacy Keras, whichever command first imports it.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
