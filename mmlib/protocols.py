"""Training protocols: the named sets of optimisation and input settings a run starts from.

A protocol fixes what the peers' papers fix besides the method: optimiser, learning rate and its
schedule, epochs, batch size, feature width, frame normalisation and train-time augmentation.
``TrainConfig.from_protocol(name, **overrides)`` starts a run from one; every field can still be
overridden, and the record stores the resolved values (``record["protocol"]``).

``book``    the book's CPU defaults: Adam 1e-3, no schedule, 20 epochs, batch 64, d = 64, frames
            scaled to [0, 1], no augmentation. Small MLP/CNN encoders converge in minutes with it.
``ogm_ge``  OGM-GE's CREMA-D / Kinetics-Sounds recipe (GeWu-Lab/OGM-GE_CVPR2022):
            SGD lr 1e-3, momentum 0.9, weight decay 1e-4 (``main.py`` l. 246), StepLR every 70
            epochs by 0.1 (l. 247, defaults l. 37-39), stepped once per epoch (l. 159), 100 epochs,
            batch 64 (l. 33-34); ResNet-18 from scratch with 512-d features; frames with
            RandomResizedCrop(224) + RandomHorizontalFlip + ImageNet normalisation at training
            and Resize(224) + the same normalisation at test (``dataset/CramedDataset.py`` l. 68-80).
``mla``     MLA's recipe (Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation):
            the same optimiser, schedule, epochs and batch (``main.py`` l. 28-34, 749, 760, 481) and
            the same frame transforms (``dataset/dataset.py`` l. 128-140). It is listed on its own
            so a record says which paper's recipe it followed.

Both peers draw the crop independently for each of the 3 frames of a clip (the transform is
applied frame by frame); :mod:`mmlib.augment` does the same on the device. They crop from the
extracted frame at the video's own size (480 x 360 for CREMA-D); the book's cache stores frames
resized to ``size x size`` (``prepare cremad --size``, 224 by default), so the crop is cut from
that: the smallest cache, whose evaluation frames are the peers' ``Resize((224, 224))`` of the
source frame (area-averaged instead of bilinear). What that costs in pixels against the peers' crop
is measured by ``python -m mmlib bench frames``; whether it moves accuracy has not been measured.
For crops closer to the peers', prepare at ``--size 320`` and train with ``frame_size=224``
(``--frame-size 224``): the crop is cut from the 320 frame and resized to 224, and evaluation
frames are resized to 224 (:meth:`MultimodalDataset.with_frame_size`). One difference remains
either way: the peers' crop boxes have a true aspect ratio in [3/4, 4/3] of the 4:3 frame, while
boxes drawn on the square cache span [1, 16/9] of it; after the resize to a square, the book's
training frames are squeezed sideways as much on average (geometric mean 4/3) as everyone's
evaluation frames, the peers' training frames less.
"""

from __future__ import annotations

import dataclasses

LR_SCHEDULES = ("none", "step", "cosine")
AUGMENTATIONS = ("none", "crop_flip")
FRAME_NORMALIZATIONS = ("unit", "imagenet")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The values a protocol gives to :class:`mmlib.train.TrainConfig` fields of the same names."""

    optimizer: str
    lr: float
    weight_decay: float
    lr_schedule: str
    lr_step: int
    lr_gamma: float
    epochs: int
    batch_size: int
    hidden_dim: int
    frame_normalization: str
    augment: str
    source: str

    def fields(self) -> dict:
        """The TrainConfig fields this protocol sets (everything but ``source``)."""
        values = dataclasses.asdict(self)
        values.pop("source")
        return values


_PEERS = dict(optimizer="sgd", lr=1e-3, weight_decay=1e-4, lr_schedule="step", lr_step=70, lr_gamma=0.1,
              epochs=100, batch_size=64, hidden_dim=512, frame_normalization="imagenet", augment="crop_flip")

PROTOCOLS: dict[str, Protocol] = {
    "book": Protocol(optimizer="adam", lr=1e-3, weight_decay=1e-4, lr_schedule="none", lr_step=70, lr_gamma=0.1,
                     epochs=20, batch_size=64, hidden_dim=64, frame_normalization="unit", augment="none",
                     source="the book's CPU defaults"),
    "ogm_ge": Protocol(**_PEERS,
                       source="GeWu-Lab/OGM-GE_CVPR2022 main.py l. 33-39, 246-247; dataset/CramedDataset.py l. 68-80"),
    "mla": Protocol(**_PEERS, source="Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation main.py "
                                     "l. 28-34, 749, 760; dataset/dataset.py l. 128-140"),
}


PROTOCOL_FIELDS = tuple(PROTOCOLS["book"].fields())


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; an unknown name lists the valid ones."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown protocol {name!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]
