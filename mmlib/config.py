"""What defines a run: :class:`TrainConfig`, each field described once, and the run id it hashes to.

Every field is declared with :func:`field`: a help sentence (``python -m mmlib train --help`` prints
it, grouped), a group (:data:`GROUPS`) and how it enters the run id: ``always``; ``when set`` (only
when it differs from its default, so that run ids stored before the field existed stay valid:
``compile``, ``frame_size``); ``never`` (where a run executes, not what it is: ``device``; and
``probe``, which chapters share runs across). Fields retired once their question was settled keep
their value in every run id (:data:`RETIRED`).

Protocols (:mod:`mmlib.protocols`): ``TrainConfig.from_protocol("ogm_ge")`` gives the peers' SGD,
StepLR schedule, 100 epochs, d = 512, ImageNet normalisation of frames and train-time crop + flip;
the record stores the resolved protocol.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from typing import Any

from mmlib.data.base import check_frame_size
from mmlib.evaluate import EMPTY_VALUES, EVAL_SEED
from mmlib.methods import build_options
from mmlib.methods.base import options_identity
from mmlib.protocols import AUGMENTATIONS, FRAME_NORMALIZATIONS, LR_SCHEDULES, get_protocol

OPTIMIZERS = ("adam", "sgd")
GROUPS = {  # a field's group -> its heading in ``python -m mmlib train --help``
    "data": "the data", "method": "the method and its model", "training": "training",
    "evaluation": "evaluation and model selection",
    "execution": "where and how the run executes (not part of the run id)",
}
ALWAYS, WHEN_SET, NEVER = "always", "when set", "never"  # how a field enters the run id
# Fields retired once their question was settled; their value stays in every run id, so the ids stored
# before they went remain valid. selection/selection_window: keeping the epoch of the best k-epoch mean
# validation accuracy instead of the single best (mfeat fou,mor, seeds 0-9, 15 epochs, Wilcoxon paired by
# seed) changed ours' test accuracy by +0.38 +- 1.03 points (p = 0.44) and ours_rownorm's by +0.03 +- 0.49
# (p = 0.78): the best epoch is kept. amp: bfloat16 autocast on CUDA is always on (the CPU path is float32).
RETIRED = {"selection": "best", "selection_window": 3, "amp": True}


def without_retired(fields: dict) -> dict:
    """``fields`` (a stored record's config, a grid entry) without the :data:`RETIRED` fields, which those
    made before a field went hold at its retired value; another value of one is an error, since no run
    can have it now."""
    for name, value in fields.items():
        if name in RETIRED and value != RETIRED[name]:
            raise ValueError(f"{name} = {value!r}, but {name} was retired at {RETIRED[name]!r} (mmlib.config.RETIRED)")
    return {k: v for k, v in fields.items() if k not in RETIRED}


def field(default: Any, help: str, group: str, identity: str = ALWAYS) -> Any:
    """A :class:`TrainConfig` field described once: ``help`` (one sentence, shown by ``train --help``),
    its ``group`` (:data:`GROUPS`), and how it enters the run id: ``always``, ``when set`` (only when it
    differs from its default, so the ids stored before the field existed stay valid) or ``never``."""
    metadata = {"help": help, "group": group, "identity": identity}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=dict, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _whole(value: Any) -> bool:
    return float(value).is_integer()


# Every numeric field of a run: the test its value must pass (NaN and inf fail them all), and what
# is expected, in words.
NUMERIC_FIELDS: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: _whole(v) and v >= 1, "a whole number of epochs, at least 1"),
    "batch_size": (lambda v: _whole(v) and v >= 1, "a whole number of samples, at least 1"),
    "eval_batch_size": (lambda v: _whole(v) and v >= 1, "a whole number of samples, at least 1"),
    "hidden_dim": (lambda v: _whole(v) and v >= 1, "a whole number of features, at least 1"),
    "lr_step": (lambda v: _whole(v) and v >= 1, "a positive number of epochs"),
    "seed": (lambda v: _whole(v) and 0 <= v < 2**32, "a whole number in 0..4294967295"),
    "eval_seed": (lambda v: _whole(v) and 0 <= v < 2**32, "a whole number in 0..4294967295"),
    "lr": (lambda v: 0 < v < float("inf"), "a finite learning rate above 0 (the book's is 1e-3)"),
    "weight_decay": (lambda v: 0 <= v < float("inf"), "a finite number, at least 0 (0: no decay)"),
    "lr_gamma": (lambda v: 0 < v <= 1, "a factor in (0, 1] that each step of the schedule multiplies the rate by"),
}


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a run; its hash is the run's id in the results store (:attr:`run_id`).

    Each field says what it means, its group and how it enters the run id in its metadata (:func:`field`);
    the command line's flags and their help are made from it (:mod:`mmlib.cli`).
    """

    dataset: str = field("mfeat", "the registered dataset the run trains and is evaluated on", "data")
    modalities: str | None = field(None, "comma-separated modalities the run keeps, e.g. fou,mor (None: all of the "
                                         "dataset's)", "data")
    dataset_options: dict = field({}, "the dataset loader's keyword options", "data")
    method: str = field("ours", "the registered training method (mmlib.methods)", "method")
    method_options: dict = field({}, "the method's own options (command line: one flag each, grouped by method below)",
                                 "method")
    epochs: int = field(20, "training epochs; the epoch kept is the one with the best validation fused accuracy",
                        "training")
    batch_size: int = field(64, "samples per training step (under torchrun: the global batch, split over the "
                                "processes)",
                            "training")
    eval_batch_size: int = field(256, "samples per evaluation chunk; batch-dependent fusion (sample-level mapping) "
                                      "sees chunks of this size", "evaluation")
    eval_seed: int = field(EVAL_SEED, "seed of the fixed shuffled order in which every split is cut into evaluation "
                                      "chunks, so no result depends on how a split is stored", "evaluation")
    lr: float = field(1e-3, "the learning rate (at the start of the schedule)", "training")
    weight_decay: float = field(1e-4, "L2 weight decay of the optimizer (0: none)", "training")
    optimizer: str = field("adam", "adam, or sgd with momentum 0.9 (the peers' protocol)", "training")
    lr_schedule: str = field("none", "none (constant), step (times lr_gamma every lr_step epochs) or cosine "
                                     "(annealed to 0 over the epochs); stepped once per epoch", "training")
    lr_step: int = field(70, "epochs between two steps of the step schedule", "training")
    lr_gamma: float = field(0.1, "factor each step of the step schedule multiplies the rate by", "training")
    frame_normalization: str = field("unit", "how RGB frames are scaled: unit ([0, 1]) or imagenet (ImageNet mean and "
                                             "std, the peers' protocol)", "data")
    frame_size: int = field(0, "side in pixels every RGB frame is resized to (0: the dataset's own)", "data", WHEN_SET)
    augment: str = field("none", "train-time frame augmentation on the device: none or crop_flip (random crop, "
                                 "resize and horizontal flip)", "data")
    protocol: str = field("book", "the preset the run starts from (mmlib/protocols.py); fields given override it",
                          "training")
    hidden_dim: int = field(64, "width d of every encoder's output, the features the fusion sees", "method")
    seed: int = field(0, "seed of the initial weights, the training shuffle, dropout and augmentation", "training")
    empty_value: str = field("zero", "v(empty set) of the Shapley values (Eq. 7): zero or chance (100 / classes); it "
                                     "shifts every modality's value alike, so orders and EDM keep it, but the "
                                     "Shapley values reported differ", "evaluation")
    probe: bool = field(True, "fit a linear probe on each modality's features after training (a record without "
                              "probes does not answer a config that asks for them)", "evaluation", NEVER)
    device: str = field("auto", "auto (CUDA when available), cpu, cuda or cuda:N", "execution", NEVER)
    compile: bool = field(False, "torch.compile the encoders; compiled dropout draws other masks, so a compiled run "
                                 "is another run", "execution", WHEN_SET)

    def __post_init__(self) -> None:
        for name, (valid, expected) in NUMERIC_FIELDS.items():
            if not valid(getattr(self, name)):
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}")
        if self.empty_value not in EMPTY_VALUES:
            raise ValueError(f"empty_value must be one of {EMPTY_VALUES}, got {self.empty_value!r}")
        get_protocol(self.protocol)
        for name, valid in (("lr_schedule", LR_SCHEDULES), ("augment", AUGMENTATIONS),
                            ("frame_normalization", FRAME_NORMALIZATIONS)):
            if getattr(self, name) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {getattr(self, name)!r}")
        check_frame_size(self.frame_size, "frame_size")
        self.method_options = dataclasses.asdict(build_options(self.method, self.method_options))

    @classmethod
    def from_stored(cls, fields: dict) -> "TrainConfig":
        """The config a stored record (or checkpoint) holds, also one made before a field was retired."""
        return cls(**without_retired(fields))

    @classmethod
    def from_protocol(cls, protocol: str = "book", **fields) -> "TrainConfig":
        """A config that starts from the named protocol (:mod:`mmlib.protocols`); ``fields`` override it."""
        return cls(**{**get_protocol(protocol).fields(), "protocol": protocol, **fields})

    def resolved_protocol(self) -> dict:
        """The protocol's name, source and the values this run used for the fields it sets."""
        preset = get_protocol(self.protocol)
        values = {name: getattr(self, name) for name in preset.fields()}
        changed = sorted(name for name, value in preset.fields().items() if values[name] != value)
        return {"name": self.protocol, "source": preset.source, "values": values, "overridden": changed}

    def identity(self) -> dict:
        """What the run id hashes: every field by its metadata's ``identity`` (:func:`field`; the method's
        options by theirs, :func:`mmlib.methods.base.options_identity`), and the :data:`RETIRED` fields' values."""
        kept = dict(RETIRED)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            rule = f.metadata["identity"]
            if f.name == "method_options":
                value = options_identity(self.method, value)
            if rule == ALWAYS or (rule == WHEN_SET and value != f.default):
                kept[f.name] = copy.deepcopy(value)
        return kept

    @property
    def run_id(self) -> str:
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True, default=str).encode()).hexdigest()[:12]
        return f"{self.method}-{self.dataset}-s{self.seed}-{digest}"
