"""The interface every training method implements, and the method registry.

The shared loop (:mod:`mmlib.train`) drives a method through these hooks, in the manner of
BalanceBenchmark's trainers, in this order:

``begin_epoch(epoch)``      start of an epoch: the method may update its per-epoch state here, and
                            returns the epoch's passes, each a list of :class:`Step` taken on every batch
``begin_pass(context)``     before each pass, with what the pass holds (:class:`PassContext`)
``begin_step(batch, step, epoch)``  before each optimised step's loss: updates that do not go
                            through the optimizer (LFM's hypergradient step on its weight)
``loss(batch, step, epoch)``        the loss of one step
``after_backward(batch, step, epoch)``  between ``backward`` and the optimizer step (gradient surgery)
``estimate(batch, step, epoch)``    instead of the four above for a step with ``optimize=False``:
                            statistics gathered without a loss or an optimizer step (CRMT's Lipschitz
                            estimate)
``end_epoch(epoch, validation)``   after the epoch's validation, with its metrics
``logits_from_features(features, present)``  the inference rule: logits from cached per-modality
                            features when only the modalities in ``present`` are observed
``fused_representation(features, present)``  what the classifier sees (for analyses of the fused space)
``distribute(world)``       before training one run on several processes (``torchrun``): each rank
                            steps on a shard of every batch, and a method that computes a statistic of
                            the batch makes it one of the global batch (:mod:`mmlib.distributed`) or
                            names why it cannot in ``distributed_refusal``

A method's hyperparameters live in one dataclass, ``Options``, so the command line and the
results store see them all.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlib.data.base import Batch
from mmlib.encoders import build_encoder

if TYPE_CHECKING:
    from mmlib.distributed import World


@dataclasses.dataclass(frozen=True)
class Step:
    """One step a pass takes on every batch.

    kind        what the step does, named by its method: ``"joint"`` (the method's loss with every
                modality), MLA's ``"modality"``, Ours' ``"prefix"``, CRMT's ``"lipschitz"`` and
                ``"scales"``, MMIN's ``"teacher"`` and ``"imagine"``
    modalities  ``"modality"``: the one modality trained; ``"prefix"``: the chain pi_1 .. pi_k, of
                which only the last encoder is trained; empty otherwise
    optimize    False for an estimation step: the loop calls :meth:`Method.estimate` on every batch
                instead of a loss, a backward pass and an optimizer step
    """

    kind: str
    modalities: tuple[str, ...] = ()
    optimize: bool = True


JOINT = Step("joint")


@dataclasses.dataclass(frozen=True)
class PassContext:
    """What the loop tells a method before one pass over the training data.

    epoch           1-based epoch
    steps           the steps this pass takes on every batch (one entry of ``begin_epoch``'s plan)
    batches         batches in this pass
    train_features  ``modalities -> (rows (N,), {m: (N, d)})``: features of the whole training split,
                    encoders in eval mode and without gradient, with the dataset row of each
    validation_batch  ``() -> Batch``: ``eval_batch_size`` samples of the validation split, drawn in a
                    shuffled order seeded by ``eval_seed`` (the same batch every call; never class-sorted)
    dataset_rows    the dataset's rows (its highest row index + 1): the length of a table indexed by
                    a batch's dataset rows (``Batch.index``)
    """

    epoch: int
    steps: list[Step]
    batches: int
    train_features: Callable[[Sequence[str]], tuple[Tensor, dict[str, Tensor]]]
    validation_batch: Callable[[], Batch]
    dataset_rows: int


@dataclasses.dataclass
class NoOptions:
    """This method has no hyperparameters of its own."""


class Method(nn.Module):
    """Encoders ``f_m`` (one per modality, each ``(B, ...) -> (B, d)``) plus what the method adds.

    ``epochs`` is the run's length (None when unknown, e.g. a model built outside the loop), for
    methods whose step order depends on it.
    """

    name: ClassVar[str] = ""  # the id in configs, run ids and tables' method columns
    display_name: ClassVar[str] = ""  # the name prose uses: the paper's (OGM-GE), else the book's (book/glossary.md)
    Options: ClassVar[type] = NoOptions
    distributed_refusal: ClassVar[str] = ""  # why one run cannot be split over processes ("" if it can)
    world: "World | None" = None  # set by distribute(): the processes one run is trained on

    def __init__(
        self,
        modalities: Sequence[str],
        input_shapes: dict[str, tuple[int, ...]],
        num_classes: int,
        dim: int,
        options: Any,
        seed: int = 0,
        encoder_kinds: dict[str, str] | None = None,
        epochs: int | None = None,
    ) -> None:
        super().__init__()
        self.modalities = tuple(modalities)
        self.num_classes, self.dim, self.options, self.seed, self.epochs = num_classes, dim, options, seed, epochs
        kinds = encoder_kinds or {}
        self.encoders = nn.ModuleDict(
            {m: build_encoder(input_shapes[m], dim, kinds.get(m)) for m in self.modalities}
        )

    # ---- several processes -------------------------------------------------------------------
    def distribute(self, world: "World") -> None:
        """Train with each batch split over the processes of ``world`` (:mod:`mmlib.distributed`).

        Default: keep ``world``. A loss that is a mean of per-sample terms needs nothing more: the
        loop scales it by the shard's share of the batch and sums gradients over ranks. A method
        whose loss or hooks use a statistic of the batch overrides this (and makes the statistic the
        global batch's, documented in its docstring), or names why it cannot in
        ``distributed_refusal``, which this turns into one clear error.
        """
        if self.distributed_refusal:
            raise ValueError(f"method {self.name!r} cannot train one run on several processes "
                             f"({self.distributed_refusal}); run it in one process (python -m mmlib train without "
                             "torchrun), or several runs at once with python -m mmlib sweep")
        self.world = world

    def in_sharded_step(self) -> bool:
        """Whether this process is stepping on its shard of a batch split over several processes."""
        return self.world is not None and self.world.batch is not None

    # ---- step order -------------------------------------------------------------------------
    def begin_epoch(self, epoch: int) -> list[list[Step]]:
        """Start of ``epoch``: update per-epoch state, and return the epoch's passes over the training
        data, each the list of steps taken on every batch. Default: one pass of :data:`JOINT`."""
        return [[JOINT]]

    def begin_pass(self, context: PassContext) -> None:
        """Called before every pass over the training data. Default: nothing."""

    def end_epoch(self, epoch: int, validation: dict) -> None:
        """Called after each epoch's validation with its metrics (Shapley values among them)."""

    def describe_epoch(self) -> dict:
        """Anything about the epoch worth recording (e.g. the order used)."""
        return {}

    # ---- one step ------------------------------------------------------------------------------
    def pass_inputs(self, steps: Sequence[Step]) -> tuple[str, ...] | None:
        """The modalities whose inputs a pass of ``steps`` reads; the loop gathers only those for its
        batches (:meth:`MultimodalDataset.batches`' ``modalities``). Default: None, every modality."""
        return None

    def begin_step(self, batch: Batch, step: Step, epoch: int) -> None:
        """Before the loss of an optimised step: updates outside the optimizer. Default: nothing."""

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        """Default: cross-entropy of the fused prediction with every modality present."""
        return F.cross_entropy(self.logits_from_features(self.encode(batch.inputs), self.modalities), batch.labels)

    def after_backward(self, batch: Batch, step: Step, epoch: int) -> None:
        """Gradient hook, between ``backward`` and the optimizer step. Default: nothing."""

    def estimate(self, batch: Batch, step: Step, epoch: int) -> None:
        """A step with ``optimize=False``: gather statistics from ``batch``, update no parameter."""
        raise NotImplementedError(f"{self.name} plans an estimation step {step.kind!r} but has no estimate hook")

    # ---- inference ----------------------------------------------------------------------------
    def encode(self, inputs: dict[str, Tensor], modalities: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Per-modality features ``(B, d)``."""
        return {m: self.encoders[m](inputs[m]) for m in (self.modalities if modalities is None else modalities)}

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        """Logits ``(B, C)`` when only the modalities in ``present`` are observed (may be empty)."""
        raise NotImplementedError

    def fused_representation(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        """What the classifier sees when the modalities in ``present`` are observed, ``(B, d')``.

        Default: the concatenation ``[X_1; ...; X_n]`` in modality order with absent modalities
        zeroed (``d' = n d``), the input of a concatenation classifier; a sum of per-modality linear
        heads is a linear classifier of the same vector. Methods that fuse otherwise override it.
        """
        ref = next(iter(features.values()))
        return torch.cat([features[m] if m in present else torch.zeros_like(ref) for m in self.modalities], dim=-1)

    def forward(self, inputs: dict[str, Tensor]) -> Tensor:
        return self.logits_from_features(self.encode(inputs), self.modalities)


@contextlib.contextmanager
def eval_mode(*modules: nn.Module):
    """Put ``modules`` in eval mode (dropout off, BatchNorm running statistics) for the block, then restore each one's
    mode."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


_METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: makes ``cls`` reachable by ``cls.name`` on the command line and in records."""
    if not cls.name or cls.name in _METHODS:
        raise ValueError(f"method name {cls.name!r} is empty or registered twice")
    _METHODS[cls.name] = cls
    return cls


def available_methods() -> list[str]:
    return list(_METHODS)


def parse_methods(text: str, parameter: str = "methods") -> list[str]:
    """Method names from a comma-separated ``text``; an unknown one raises, naming ``parameter`` and the valid
    choices."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in _METHODS]
    if unknown:
        raise ValueError(f"{parameter}: unknown method {unknown[0]!r}; valid choices are {available_methods()}")
    return names


def display_name(name: Any) -> Any:
    """What tables show for method ``name``: its ``Method.display_name`` (book/glossary.md maps the
    two); anything else (a variant such as ``w/o memory``, a paper's row name) unchanged."""
    return _METHODS[name].display_name if isinstance(name, str) and name in _METHODS else name


def method_class(name: str) -> type[Method]:
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; valid choices are {available_methods()}")
    return _METHODS[name]


def build_options(name: str, values: dict[str, Any] | None = None) -> Any:
    """The method's ``Options`` dataclass from a dict; an unknown key raises with the valid ones."""
    options_cls = method_class(name).Options
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    values = dict(values or {})
    unknown = sorted(set(values) - set(fields))
    if unknown:
        valid = ", ".join(f"{k} (default {f.default!r})" for k, f in fields.items()) or "none"
        raise ValueError(f"method {name!r} has no option {unknown[0]!r}; its options are: {valid}")
    return options_cls(**values)


def options_identity(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (a method's full options) as the run id hashes them: an option whose field metadata
    says ``"identity": "when set"`` enters only when it differs from its default, so the run ids stored
    before the option existed stay valid (the rule of :func:`mmlib.config.field`)."""
    fields = {f.name: f for f in dataclasses.fields(method_class(name).Options)}
    return {k: v for k, v in values.items()
            if not (fields[k].metadata.get("identity") == "when set" and v == fields[k].default)}
