"""MMIN: missing modality imagination network (Zhao, Li, Jin; ACL 2021).

Paper: "Missing Modality Imagination Network for Emotion Recognition with Uncertain Missing
Modalities" (Jinming Zhao, Ruichen Li, Qin Jin; ACL 2021). Public code: ``AIM3-RUC/MMIN`` at
2f22403 (the repository's newest commit keeps only the README): ``models/mmin_model.py``,
``models/networks/autoencoder.py`` (``ResidualAE``), ``data/multimodal_miss_dataset.py``.

Two stages, both inside one run of the shared loop:

1. Teacher (epochs 1..E0): the encoders and a linear classifier on ``[X_1; ...; X_n]`` are trained
   on complete data (the code's pretrained ``UttFusionModel``, loaded in ``load_pretrained_encoder``,
   l. 89-99). At the start of epoch E0 + 1 the encoders are copied into a frozen teacher; the
   student keeps them as its initialisation (``post_process``, l. 101-110).
2. Imagination (epochs E0 + 1 ..): every training sample loses a random proper subset of its
   modalities (the six patterns AZZ .. ZVL, ``multimodal_miss_dataset.py`` l. 75-82, one per
   sample, l. 101). The masked features ``h = [X_1 m_1; ...; X_n m_n]`` go through a residual
   autoencoder of ``n_blocks`` blocks (``ResidualAE.forward``, ``autoencoder.py`` l. 133-145):

       x_0 = h, o_0 = 0;  for each block i: x_i = x_{i-1} + o_{i-1}, z_i = enc_i(x_i), o_i = dec_i(z_i)
       h' = transition(x_k + o_k),   latent = [z_1; ...; z_k]

   a backward autoencoder maps h' back to h'' (the cycle), and a classifier reads the latent.
   Loss (``mmin_model.py`` l. 172-175):

       L = CE(C(latent), y) + mse_weight * MSE(T, h') + cycle_weight * MSE(h.detach(), h'')

   where T, the *imagination target*, is the teacher's features of the missing modalities
   (the teacher encodes the "reverse" input, ``A_reverse = A * (1 - mask)``, l. 133, 163-168).
   Gradients are clipped to norm ``clip_norm`` (1.0) per network before every step: each modality's
   encoder, the autoencoder, the cycle autoencoder and the classifier on its own (the code's
   ``model_names`` ``A, V, L, C, AE, AE_cycle``, ``mmin_model.py`` l. 50, clipped one by one,
   l. 177-178). The teacher's epochs clip each encoder and the teacher's classifier at
   ``teacher_clip_norm`` (5.0), as the code's teacher training does (``UttFusionModel.backward``,
   ``models/utt_fusion_model.py`` @ 33430c9, l. 116-117).

   (An earlier form clipped all encoders as one network and the teacher at 1.0; in the
   missing-modality chapter's setting the difference was not significant.)

Inference with the modalities in ``present``: absent features are zero, then autoencoder and
classifier as above; the teacher is not used.

Deliberate differences from the public code
- An absent modality is a zero *feature* (the book's convention for every method), not the
  encoder's output on a zero input; the teacher's target for a present modality is therefore
  zero rather than the teacher's encoding of a zero input.
- The teacher's classifier is one linear layer on the concatenation (the code: a two-layer
  ``FcClassifier``), and it is trained in the same run (the code pretrains it in a separate run).
- Encoders are the book's (MLP / CNN / ResNet per modality), not the code's LSTM and TextCNN.

Several processes (``torchrun``): refused, because its missing-modality masks are drawn per shard,
so they would not be the masks one process draws for the batch
(``distributed_refusal``; ``python -m mmlib sweep`` runs several runs at
once).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmlib.data.base import Batch
from mmlib.fusion import ConcatHead
from mmlib.methods.base import Method, Step, register_method
from mmlib.missing import mask_features, present_mask, training_mask
from mmlib.tuning.space import Float, SearchSpace

TEACHER, IMAGINE = Step("teacher"), Step("imagine")


class ResidualAE(nn.Module):
    """MMIN's residual autoencoder: ``(B, D) -> ((B, D) reconstruction, (B, n_blocks * layers[-1]) latent)``."""

    def __init__(self, input_dim: int, layers: Sequence[int], n_blocks: int) -> None:
        super().__init__()
        self.transition = nn.Sequential(nn.Linear(input_dim, input_dim), nn.ReLU(), nn.Linear(input_dim, input_dim))
        self.encoders = nn.ModuleList(_encoder(input_dim, layers) for _ in range(n_blocks))
        self.decoders = nn.ModuleList(_decoder(input_dim, layers) for _ in range(n_blocks))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x_in, x_out, latents = x, torch.zeros_like(x), []
        for encoder, decoder in zip(self.encoders, self.decoders):
            x_in = x_in + x_out
            latent = encoder(x_in)
            x_out = decoder(latent)
            latents.append(latent)
        return self.transition(x_in + x_out), torch.cat(latents, dim=-1)


def _encoder(input_dim: int, layers: Sequence[int]) -> nn.Sequential:
    """Linear + LeakyReLU per layer, no activation after the last (``get_encoder``, l. 100-114)."""
    parts, width = [], input_dim
    for size in layers:
        parts += [nn.Linear(width, size), nn.LeakyReLU()]
        width = size
    return nn.Sequential(*parts[:-1])


def _decoder(input_dim: int, layers: Sequence[int]) -> nn.Sequential:
    """The encoder's widths reversed, Linear + ReLU, a last Linear to ``input_dim`` (``get_decoder``, l. 116-130)."""
    widths = list(reversed(layers)) + [input_dim]
    parts = []
    for a, b in zip(widths[:-2], widths[1:-1]):
        parts += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*parts, nn.Linear(widths[-2], widths[-1]))


def imagination_loss(target: Tensor, reconstruction: Tensor) -> Tensor:
    """MMIN's forward imagination loss: mean squared error between the teacher's target and ``h'``."""
    return F.mse_loss(reconstruction, target)


def teacher_epochs_for(epochs: int | None, requested: int) -> int:
    """E0: ``requested`` when positive, else a third of the run (at least 1 when the run has 2 epochs or more)."""
    if requested > 0:
        return requested
    if epochs is None or epochs < 2:
        return 0
    return max(1, epochs // 3)


# What `python -m mmlib tune` may change (mmlib.tuning.space): the weights of the two imagination losses.
SEARCH_SPACE = SearchSpace(
    mse_weight=Float(0.1, 10.0, log=True, source="MMIN code mmin_model.py: mse_weight = 1.0"),
    cycle_weight=Float(0.1, 10.0, log=True, source="MMIN code mmin_model.py: cycle_weight = 1.0"),
)


@register_method
class MMIN(Method):
    name = "mmin"
    display_name = "MMIN"
    distributed_refusal = ('its missing-modality masks are drawn per shard, so they would not be the masks one '
                           'process draws for the batch')

    @dataclasses.dataclass
    class Options:
        """MMIN's hyperparameters (defaults: the code's ``mmin_model.py`` l. 20-39)."""

        ae_layers: str = "128,64,32"  # widths of each autoencoder block's encoder
        n_blocks: int = 3  # residual autoencoder blocks
        cls_layers: str = "128,128"  # hidden widths of the classifier on the latent
        dropout: float = 0.3  # classifier dropout
        mse_weight: float = 1.0  # weight of the imagination loss
        cycle_weight: float = 1.0  # weight of the cycle loss
        teacher_epochs: int = 0  # E0; 0: a third of the run
        clip_norm: float = 1.0  # gradient norm clip per network in the imagination epochs (0: off)
        teacher_clip_norm: float = 5.0  # the same in the teacher's epochs (0: off; utt_fusion_model.py l. 117)

        def __post_init__(self) -> None:
            for name in ("ae_layers", "cls_layers"):
                text = getattr(self, name)
                if not text or not all(p.strip().isdigit() and int(p) > 0 for p in text.split(",")):
                    raise ValueError(f"{name} must be comma-separated positive widths like '128,64,32', got {text!r}")
            if self.clip_norm < 0 or self.teacher_clip_norm < 0:
                raise ValueError(f"clip_norm and teacher_clip_norm must be >= 0 (0: no clipping); got "
                                 f"{self.clip_norm}, {self.teacher_clip_norm}")
            if self.n_blocks < 1 or self.teacher_epochs < 0 or not 0.0 <= self.dropout < 1.0:
                raise ValueError(f"n_blocks must be >= 1, teacher_epochs >= 0 and dropout in [0, 1); got "
                                 f"{self.n_blocks}, {self.teacher_epochs}, {self.dropout}")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        width = len(self.modalities) * self.dim
        layers = [int(p) for p in self.options.ae_layers.split(",")]
        self.teacher_head = ConcatHead(self.modalities, self.dim, self.num_classes)
        self.teacher = copy.deepcopy(self.encoders).requires_grad_(False)
        self.autoencoder = ResidualAE(width, layers, self.options.n_blocks)
        self.cycle = ResidualAE(width, layers, self.options.n_blocks)
        hidden = [layers[-1] * self.options.n_blocks] + [int(p) for p in self.options.cls_layers.split(",")]
        blocks = []
        for a, b in zip(hidden[:-1], hidden[1:]):
            blocks += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(self.options.dropout)]
        self.classifier = nn.Sequential(*blocks, nn.Linear(hidden[-1], self.num_classes))
        self.teacher_epochs = teacher_epochs_for(self.epochs, self.options.teacher_epochs)

    def begin_epoch(self, epoch: int) -> list[list[Step]]:
        """The teacher's epochs, then the imagination epochs; one pass each."""
        return [[TEACHER if epoch <= self.teacher_epochs else IMAGINE]]

    def begin_pass(self, context) -> None:
        if context.epoch == self.teacher_epochs + 1 and context.steps == [IMAGINE]:
            self.teacher.load_state_dict(self.encoders.state_dict())

    def train(self, mode: bool = True) -> "MMIN":
        super().train(mode)
        self.teacher.eval()
        return self

    def imagine(self, features: dict[str, Tensor], mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Masked concatenation ``h``, reconstruction ``h'`` and latent for a ``(B, n)`` present mask."""
        masked = mask_features(features, self.modalities, mask)
        h = torch.cat([masked[m] for m in self.modalities], dim=-1)
        reconstruction, latent = self.autoencoder(h)
        return h, reconstruction, latent

    def loss(self, batch: Batch, step: Step, epoch: int) -> Tensor:
        features = self.encode(batch.inputs)
        if step == TEACHER:
            return F.cross_entropy(self.teacher_head(features), batch.labels)
        mask = training_mask(len(batch), len(self.modalities), include_full=False, device=batch.labels.device)
        h, reconstruction, latent = self.imagine(features, mask)
        with torch.no_grad():
            taught = mask_features({m: self.teacher[m](batch.inputs[m]) for m in self.modalities}, self.modalities,
                                   ~mask)
        target = torch.cat([taught[m] for m in self.modalities], dim=-1)
        cycled, _ = self.cycle(reconstruction)
        return (F.cross_entropy(self.classifier(latent), batch.labels)
                + self.options.mse_weight * imagination_loss(target, reconstruction)
                + self.options.cycle_weight * F.mse_loss(cycled, h.detach()))

    def clipped_networks(self) -> list[nn.Module]:
        """The networks whose gradients are clipped one by one: each modality's encoder, then the
        autoencoders and the classifiers (``mmin_model.py`` l. 50, 177-178)."""
        return [*self.encoders.values(), self.autoencoder, self.cycle, self.classifier, self.teacher_head]

    def after_backward(self, batch: Batch, step: Step, epoch: int) -> None:
        """Clip each network's gradient norm: ``teacher_clip_norm`` in the teacher's epochs, else ``clip_norm``."""
        norm = self.options.teacher_clip_norm if step == TEACHER else self.options.clip_norm
        if norm > 0:
            for net in self.clipped_networks():
                nn.utils.clip_grad_norm_(net.parameters(), norm)

    def logits_from_features(self, features: dict[str, Tensor], present: Sequence[str]) -> Tensor:
        ref = next(iter(features.values()))
        full = {m: features.get(m, torch.zeros_like(ref)) for m in self.modalities}
        _, _, latent = self.imagine(full, present_mask(present, self.modalities, ref.shape[0], ref.device))
        return self.classifier(latent)
