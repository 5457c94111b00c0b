"""The type checker runs clean on the package (this is how CI runs mypy)."""

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean():
    # Configuration lives in pyproject.toml ([tool.mypy]).
    result = subprocess.run([sys.executable, "-m", "mypy", "sktransfer"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# The public API whose signatures must be fully annotated (the package ships
# py.typed). Only what sktransfer itself defines is checked: methods inherited
# from scikit-learn (set_output, get_params, ...) are not ours.
PUBLIC_MODULES = {
    "sktransfer": None,
    "sktransfer.adapt": None,
    "sktransfer.backbones": None,
    "sktransfer.dask": None,
    "sktransfer.persist": None,
    "sktransfer.data": None,
    "sktransfer.cache": None,
    "sktransfer.datasets": None,
    "sktransfer.evaluate": None,
    "sktransfer.report": None,
    "sktransfer.augment": None,
}
METHODS = ("__init__", "fit", "transform", "fit_transform", "predict",
           "predict_proba", "score", "decision_function", "get_feature_names_out")


def _public_names(module):
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and getattr(v, "__module__", None) == module.__name__]
    return names


def _missing_annotations(label, func, *, check_return=True):
    if not getattr(func, "__module__", "").startswith("sktransfer"):
        return []
    signature = inspect.signature(func)
    missing = [f"{label}({name})" for name, param in signature.parameters.items()
               if name not in ("self", "cls")
               and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
               and param.annotation is param.empty]
    if check_return and signature.return_annotation is signature.empty:
        missing.append(f"{label} -> ?")
    return missing


def _walk_public_api():
    missing = []
    for module_name, names in PUBLIC_MODULES.items():
        module = importlib.import_module(module_name)
        for name in names or _public_names(module):
            obj = getattr(module, name)
            label = f"{module_name}.{name}"
            if inspect.isclass(obj):
                for method in METHODS:
                    func = vars(obj).get(method) or next(
                        (vars(k)[method] for k in obj.__mro__ if method in vars(k)),
                        None)
                    if func is None or not inspect.isfunction(func):
                        continue
                    missing += _missing_annotations(
                        f"{func.__qualname__}", func,
                        check_return=method != "__init__")
            elif inspect.isfunction(obj):
                missing += _missing_annotations(label, obj)
    return sorted(set(missing))


def test_public_api_is_annotated():
    missing = _walk_public_api()
    assert not missing, "missing annotations:\n" + "\n".join(missing)
