"""
One ONNX file, run without torch
================================

``sktransfer.export`` writes a fitted pipeline (the image preprocessing, the
frozen network and the scikit-learn steps after it) as one ONNX file that ONNX
Runtime runs alone. Here a pipeline is fitted on crops of scikit-image
photos, exported, and the file is run in a separate Python process in which
``import torch`` and ``import sktransfer`` fail; its predictions are then
compared with the pipeline's own.

Needs ``pip install 'sktransfer[export]'`` (onnx, onnxruntime, skl2onnx).

Run: ``python examples/export_onnx.py``
"""

# %%
# Fit: frozen EfficientNet-Lite0 features, scaling and logistic regression on
# 10 crops of each of eight photos.
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import PretrainedImageFeatures
from sktransfer.datasets import load_photo_patches

X_train, y_train = load_photo_patches(n_per_class=10, split="train")
X_test, y_test = load_photo_patches(n_per_class=10, split="test", random_state=1)
model = make_pipeline(PretrainedImageFeatures("efficientnet_lite0"), StandardScaler(),
                      LogisticRegression(max_iter=2000)).fit(X_train, y_train)
print(f"pipeline accuracy on the held-out crops: {model.score(X_test, y_test):.3f}")

# %%
# Export. The file takes ``image``, uint8 ``(N, H, W, 3)`` of any size, and
# returns ``label`` and ``probabilities``.
folder = Path(tempfile.mkdtemp())
path = sktransfer.export(model, folder / "photos.onnx")
print(f"{path}: {Path(path).stat().st_size / 2**20:.1f} MiB")

# %%
# Run the file in a fresh process with nothing but ONNX Runtime and numpy:
# ``sys.modules["torch"] = None`` makes every ``import torch`` fail there
# (and the same for sktransfer), so the predictions cannot come from them.
np.save(folder / "images.npy", X_test)
program = """
import sys
sys.modules["torch"] = None       # "import torch" raises ImportError from here on
sys.modules["sktransfer"] = None
import json
import shutil
import numpy as np
import onnxruntime as ort

session = ort.InferenceSession(sys.argv[1])
images = np.load(sys.argv[2])
label, probabilities = session.run(["label", "probabilities"], {"image": images})
try:
    import torch  # noqa: F401
    sys.exit("torch was importable")
except ImportError:
    pass
print(json.dumps({"label": label.tolist(), "probabilities": probabilities.tolist(),
                  "modules": sorted(m for m in sys.modules if m.startswith("torch")
                                    and sys.modules[m] is not None)}))
"""
done = subprocess.run([sys.executable, "-c", program, path, folder / "images.npy"],
                      capture_output=True, text=True, check=True)
result = json.loads(done.stdout.strip().splitlines()[-1])
onnx_labels = np.asarray(result["label"])
onnx_proba = np.asarray(result["probabilities"])
print("torch modules loaded in the ONNX process:", result["modules"] or "none")

# %%
# The comparison. The file resizes in the graph with ONNX Runtime's bicubic
# resize, torchvision's differs by rounding: probabilities agree closely but
# not bit for bit, so a borderline crop can change label.
sk_labels = model.predict(X_test)
sk_proba = model.predict_proba(X_test)
agreement = np.mean(onnx_labels == sk_labels)
print(f"labels agree on {agreement:.1%} of {len(X_test)} crops; "
      f"ONNX accuracy {np.mean(onnx_labels == y_test):.3f}; mean |probability "
      f"difference| {np.abs(onnx_proba - sk_proba).mean():.4f}")

fig, ax = plt.subplots(figsize=(4.8, 4.5))
for k, name in enumerate(model.classes_):
    ax.scatter(sk_proba[:, k], onnx_proba[:, k], s=10, label=name)
ax.plot([0, 1], [0, 1], color="gray", lw=0.8)
ax.set_xlabel("probability, scikit-learn pipeline (torch)")
ax.set_ylabel("probability, ONNX file (onnxruntime only)")
ax.set_title(f"{len(X_test)} held-out crops x {len(model.classes_)} classes: "
             f"labels agree {agreement:.0%}", fontsize=9)
ax.legend(fontsize=7, markerscale=1.5)
fig.tight_layout()
plt.show()

# %%
# The file can go wherever ONNX Runtime runs (C, C++, C#, Java, JavaScript,
# mobile); see docs/export.md. Here it was only a temporary file.
shutil.rmtree(folder)
