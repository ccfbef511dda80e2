"""Model specifications and loading: ``name@revision``, checks at the door, ``from_pretrained``.

Every model of a run is checked before the first one loads: a local path must exist and hold
tokenizer files, anything else must be a plausible Hugging Face hub id. Loading goes through
``from_pretrained`` for hub ids and local directories alike, with ``revision``, ``dtype``,
``device_map`` and ``trust_remote_code`` passed through.

torch and transformers are imported inside functions only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from ..exceptions import DataValidationError

__all__ = ["ModelSpec", "parse_model", "check_model", "check_devices", "load_model",
           "load_tokenizer", "resolve_device", "resolve_dtype", "resolve_commit", "versions",
           "fuse_activations"]

_DTYPES = ("float32", "float16", "bfloat16", "float64")
#: hub ids: ``name`` or ``owner/name`` (huggingface_hub's repo-id rules)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?$")
#: files of which a local model directory needs at least one to have a tokenizer
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "spiece.model",
                   "vocab.txt", "tokenizer.tiktoken", "sentencepiece.bpe.model")


@dataclass(frozen=True)
class ModelSpec:
    """One model of a run.

    Attributes
    ----------
    source : str
        Hub id or local directory, as given (without ``@revision``).
    revision : str or None
        Branch, tag or commit of a hub model (``EleutherAI/pythia-410m@step64000``).
    """

    source: str
    revision: str | None = None

    @property
    def local(self) -> bool:
        return Path(self.source).exists()

    @property
    def name(self) -> str:
        """The ``model`` column: the hub id or a local directory's name, plus ``@revision``."""
        base = Path(self.source).name if self.local else self.source
        return f"{base}@{self.revision}" if self.revision else base

    def __str__(self) -> str:
        return f"{self.source}@{self.revision}" if self.revision else self.source


def parse_model(text) -> ModelSpec:
    """``"org/name@rev"`` -> ``ModelSpec("org/name", "rev")``; an existing path stays whole."""
    if isinstance(text, ModelSpec):
        return text
    text = str(text)
    if Path(text).exists():
        return ModelSpec(text)
    base, sep, rev = text.rpartition("@")
    if sep and base and rev:
        return ModelSpec(base, rev)
    return ModelSpec(text)


def _looks_like_path(text: str) -> bool:
    """A path, not a hub id: starts with ``.``, ``/`` or ``~``, has an OS separator other
    than ``/``, or more than one ``/`` (hub ids have at most one)."""
    seps = {os.sep, os.altsep} - {None, "/"}
    return (text.startswith((".", "/", "~")) or any(s in text for s in seps)
            or text.count("/") > 1)


def check_model(spec: ModelSpec) -> None:
    """Refuse a model that cannot load, before any model loads.

    Raises
    ------
    DataValidationError
        A path that does not exist, a local directory without tokenizer files, a revision on
        a local directory, or a name that is not a hub id.
    """
    source = spec.source
    if spec.local:
        path = Path(source)
        if spec.revision:
            raise DataValidationError(
                f"model {str(spec)!r}: {source!r} is a local directory, which has no "
                "revisions; pass the directory of that checkpoint instead.")
        if not path.is_dir():
            raise DataValidationError(
                f"model {source!r} is a file; give a model directory (holding config.json, "
                "the weights and the tokenizer files) or a hub id.")
        if not any((path / f).exists() for f in TOKENIZER_FILES):
            raise DataValidationError(
                f"model directory {source!r} has no tokenizer files (none of "
                f"{list(TOKENIZER_FILES)}); save the tokenizer next to the weights "
                "(tokenizer.save_pretrained(DIR)).")
        return
    if _looks_like_path(source):
        raise DataValidationError(
            f"model path {source!r} does not exist; check the spelling, or give a hub id "
            "such as 'EleutherAI/pythia-70m'.")
    if not _HUB_ID.match(source) or "--" in source or ".." in source:
        raise DataValidationError(
            f"model {source!r} is neither an existing directory nor a Hugging Face hub id "
            "(owner/name, letters, digits, '-', '_', '.').")


def check_devices(devices) -> None:
    """Refuse CUDA / MPS devices that this machine does not have, naming them."""
    import torch

    for device in devices:
        device = str(device)
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise DataValidationError(
                    f"device {device!r} was asked for, but torch finds no CUDA device "
                    f"(torch {torch.__version__}); use --device cpu, or a CUDA build of torch.")
            index = int(device.split(":")[1]) if ":" in device else 0
            if index >= torch.cuda.device_count():
                raise DataValidationError(
                    f"device {device!r} does not exist: torch sees "
                    f"{torch.cuda.device_count()} CUDA device(s), cuda:0.."
                    f"cuda:{torch.cuda.device_count() - 1}.")
        elif device == "mps":
            mps = getattr(torch.backends, "mps", None)
            if mps is None or not mps.is_available():
                raise DataValidationError("device 'mps' was asked for, but MPS is not "
                                          "available; use --device cpu.")
        elif device not in ("cpu", "auto"):
            raise DataValidationError(
                f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'; got {device!r}.")


def resolve_device(device: str = "auto") -> str:
    """Return ``"cuda"``, ``"mps"`` or ``"cpu"`` for ``device="auto"``, else ``device``."""
    import torch

    if device not in ("auto", "cpu", "cuda", "mps") and not str(device).startswith("cuda:"):
        raise DataValidationError(
            f"device must be one of 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'; got {device!r}.")
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def resolve_dtype(dtype, device: str):
    """A torch dtype: ``dtype`` by name, or float32 on CPU and the checkpoint's otherwise."""
    import torch

    if dtype is None:
        return torch.float32 if device == "cpu" else "auto"
    if dtype == "auto" or not isinstance(dtype, str):
        return dtype
    if dtype not in _DTYPES:
        raise DataValidationError(
            f"dtype must be one of {list(_DTYPES) + ['auto']}; got {dtype!r}.")
    return getattr(torch, dtype)


def _dtype_keyword() -> str:
    """``from_pretrained``'s dtype keyword: ``dtype`` from transformers 4.56 on (``torch_dtype``
    is deprecated there), ``torch_dtype`` before. The version decides, not a ``TypeError``: older
    releases take an unknown ``dtype=`` silently as a config attribute and load float32."""
    import transformers

    return "dtype" if Version(transformers.__version__).release >= (4, 56) else "torch_dtype"


def load_tokenizer(spec, *, trust_remote_code: bool = False):
    """The tokenizer of a model (``AutoTokenizer.from_pretrained``), checked to be non-empty."""
    from transformers import AutoTokenizer

    spec = parse_model(spec)
    kwargs = {"revision": spec.revision} if spec.revision else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            spec.source, trust_remote_code=trust_remote_code, **kwargs)
    except (OSError, ValueError) as err:
        raise DataValidationError(
            f"could not load the tokenizer of model {str(spec)!r}: {err}") from err
    if len(tokenizer) == 0:
        raise DataValidationError(
            f"the tokenizer of model {str(spec)!r} is empty (0 tokens): every class would "
            "score as 0 tokens. Save the model's real tokenizer next to its weights.")
    return tokenizer


def load_model(spec, *, device: str = "cpu", dtype=None, device_map=None, max_memory=None,
               trust_remote_code: bool = False):
    """Load a causal LM and its tokenizer with ``from_pretrained`` (hub id or local path).

    Parameters
    ----------
    spec : ModelSpec or str
        ``"org/name"``, ``"org/name@revision"`` or a local directory.
    device : str, default "cpu"
        Where the model goes when ``device_map`` is None.
    dtype : str, optional
        See :func:`resolve_dtype`.
    device_map : str or dict, optional
        Passed to ``from_pretrained`` (``"auto"``: accelerate spreads a model larger than one
        device over the visible devices, then CPU); the model is not moved afterwards.
    max_memory : dict, optional
        accelerate's per-device memory limits, with ``device_map``.
    trust_remote_code : bool, default False
        Run a checkpoint's own modelling code; off unless asked.

    Returns
    -------
    model, tokenizer
        The model in eval mode.
    """
    from transformers import AutoModelForCausalLM

    spec = parse_model(spec)
    tokenizer = load_tokenizer(spec, trust_remote_code=trust_remote_code)
    kwargs = {_dtype_keyword(): resolve_dtype(dtype, device),
              "trust_remote_code": trust_remote_code}
    if spec.revision:
        kwargs["revision"] = spec.revision
    if device_map is not None:
        kwargs["device_map"] = device_map
        if max_memory:
            kwargs["max_memory"] = max_memory
    model = AutoModelForCausalLM.from_pretrained(spec.source, **kwargs)
    if device_map is None:
        model = model.to(device)
    return model.eval(), tokenizer


def resolve_commit(spec: ModelSpec, model=None) -> str | None:
    """The commit a hub model's revision resolves to (from the loaded config, else the local
    hub cache or the hub, reading config.json only); None for a local directory or when it
    cannot be told without downloading the model."""
    if spec.local:
        return None
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    if commit:
        return str(commit)
    try:
        from transformers.utils import cached_file
        from transformers.utils.hub import extract_commit_hash

        path = cached_file(spec.source, "config.json", revision=spec.revision,
                           _raise_exceptions_for_missing_entries=False)
        return extract_commit_hash(path, None) if path else None
    except Exception:  # offline and not cached, hub down: the commit is read after loading
        return None


def versions() -> dict:
    """torch and transformers versions, for the provenance columns."""
    import torch
    import transformers

    return {"torch_version": torch.__version__, "transformers_version": transformers.__version__}


def model_devices(model, device: str) -> str:
    """The device(s) a loaded model sits on: ``cpu``, ``cuda:0`` or ``cuda:0,cuda:1``."""
    placement = getattr(model, "hf_device_map", None)
    if not placement:
        return str(next(model.parameters()).device)
    named = sorted({f"cuda:{d}" if isinstance(d, int) else str(d) for d in placement.values()})
    return ",".join(named)


def fuse_activations(model) -> int:
    """Swap GPT-2's ``gelu_new`` (``NewGELUActivation``, five element-wise kernels written in
    Python) for PyTorch's fused ``gelu(approximate="tanh")``: the same function (they differ by
    float rounding, ~2e-7), about 10% faster on CPU for GPT-2-architecture models. Other
    activations are left alone. Returns the number of modules swapped."""
    from transformers import activations

    old, new = getattr(activations, "NewGELUActivation", None), getattr(
        activations, "GELUTanh", None) or getattr(activations, "PytorchGELUTanh", None)
    if old is None or new is None:
        return 0
    swapped = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is old:
                setattr(parent, name, new())
                swapped += 1
    return swapped


def input_device(model):
    """The device of the input embeddings (where input ids go, also under a device map)."""
    return model.get_input_embeddings().weight.device
