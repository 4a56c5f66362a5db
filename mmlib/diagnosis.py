"""``mmlib.diagnose(model, dataset)`` (this module's :func:`diagnose`): an imbalance diagnostic for any model.

    python -m mmlib diagnose RUN_ID [--results-dir results/runs] [--weights-dir results/weights]
                                    [--split test] [--figure out.png]

Reports, per modality, on one split: the Shapley share of accuracy (paper Eq. 7, normalised to
100% over the modalities), both EDM readings (``sample``, Wei et al.'s per-sample valuation, and
``share``; :mod:`mmlib.shapley`), both unimodal measures (``head``: the model's own decision with
only m present; ``probe``: a logistic regression on m's frozen features) and the decision-layer
statistics of :mod:`mmlib.decision` (weight norm, logit scale, feature norm, follow rate).

The interface a model needs (every model of the book has it; so can yours), an ``nn.Module`` with

``modalities``                          the modality names, a tuple of str, in the dataset's order
``encode(inputs, modalities=None)``     ``{m: (B, ...)} -> {m: (B, d_m)}``: one feature per modality
``logits_from_features(features, present)``
                                        ``-> (B, C)`` logits when only the modalities in ``present``
                                        (a tuple, possibly empty) are observed; an absent modality's
                                        feature must not be read (zero it, or leave it out)

No training method, loss or optimiser is needed. ``dataset`` is a :class:`mmlib.data.MultimodalDataset`
(e.g. ``mmlib.data.load_dataset("mfeat", modalities="fou,mor")``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import pandas as pd
from torch import nn

from mmlib.data.base import MultimodalDataset
from mmlib.decision import decision_statistics
from mmlib.evaluate import EVAL_SEED, encode_split, linear_probe_accuracy, subset_correct, summarize_correct

REQUIRED = ("modalities", "encode", "logits_from_features")

# The columns of Diagnosis.table (one per statistic) as a table's headers read them.
HEADERS = {"shapley": "Shapley value", "shapley_share": "Shapley share (%)",
           "edm_sample": "EDM term (sample)", "edm_share": "EDM term (share)",
           "head_acc": "head accuracy (%)", "probe_acc": "probe accuracy (%)",
           "weight_norm": "weight norm", "logit_scale": "logit scale",
           "feature_norm": "feature norm", "follow_rate": "follow rate (%)"}


@dataclasses.dataclass
class Diagnosis:
    """What :func:`diagnose` measured: ``table`` (one row per modality) and ``summary`` (the model)."""

    table: pd.DataFrame
    summary: dict

    def figure(self):
        """Four panels, two to a row (legible at a book page's width): Shapley share, unimodal
        accuracy (head, probe), logit scale, follow rate."""
        import matplotlib.pyplot as plt

        from mmlib.plots import modality_palette

        colors = modality_palette(list(self.table.index))
        fig, axes = plt.subplots(2, 2, figsize=(8, 6.4))
        axes = axes.ravel()
        panels = [("shapley_share", "Shapley share (%)"), (None, "unimodal accuracy (%)"),
                  ("logit_scale", "logit scale (std over classes)"), ("follow_rate", "fused follows m (% of disagr.)")]
        for ax, (column, label) in zip(axes, panels):
            if column is None:
                self.table[["head_acc", "probe_acc"]].plot.bar(ax=ax, rot=0, color=["#4c72b0", "#bbbbbb"])
                ax.set_ylim(0, 118)  # room above 100% for the legend, which then covers no bar
                ax.set_yticks(range(0, 101, 20))
                ax.legend(["head", "probe"], ncol=2, loc="upper center")
            else:
                ax.bar(self.table.index, self.table[column], color=[colors[m] for m in self.table.index])
            ax.set_ylabel(label)
            ax.set_xlabel("modality")
        if len(self.table) > 0:
            axes[3].axhline(100.0 / len(self.table), color="#444444", lw=1, ls="--")
        fig.suptitle(f"fused {self.summary['fused_acc']:.1f}%, EDM {self.summary['edm']:.1f} (sample) / "
                     f"{self.summary['edm_share']:.1f} (share)", fontsize=11)
        fig.tight_layout()
        return fig


def check_interface(model) -> None:
    """One clear line when ``model`` lacks a piece of the interface (module docstring)."""
    missing = [name for name in REQUIRED if not hasattr(model, name)]
    if missing or not isinstance(model, nn.Module):
        what = f"has no {missing[0]!r}" if missing else "is not a torch.nn.Module"
        raise ValueError(f"diagnose: model {what}; a model needs to be an nn.Module with {', '.join(REQUIRED)} "
                         "(see mmlib.diagnose's docstring)")


def diagnose(model: nn.Module, dataset: MultimodalDataset, split: str = "test", batch_size: int = 256,
             seed: int = EVAL_SEED, probe: bool = True, device: str = "cpu") -> Diagnosis:
    """Shapley shares, both EDM readings, head and probe accuracy and decision-layer statistics."""
    check_interface(model)
    modalities = tuple(model.modalities)
    absent = [m for m in modalities if m not in dataset.modalities]
    if absent:
        raise ValueError(f"diagnose: the model's modality {absent[0]!r} is not in dataset {dataset.name!r} "
                         f"({list(dataset.modalities)}); select the same modalities")
    if split not in dataset.splits:
        raise ValueError(f"diagnose: split must be one of {list(dataset.splits)}, got {split!r}")
    model = model.to(device)
    features, labels = encode_split(model, dataset, split, batch_size, device, seed)
    metrics = summarize_correct(subset_correct(model, features, labels, batch_size), modalities, dataset.num_classes)
    decision = decision_statistics(model, features, batch_size)
    probes = linear_probe_accuracy(model, dataset, batch_size, device, split) if probe else {}
    total = sum(metrics["shapley"].values())
    rows = {m: {"shapley": metrics["shapley"][m],
                "shapley_share": 100.0 * metrics["shapley"][m] / total if total else float("nan"),
                "edm_sample": metrics["edm_terms"][m], "edm_share": metrics["edm_share_terms"][m],
                "head_acc": metrics["unimodal_acc"][m], "probe_acc": probes.get(m, float("nan")),
                **decision["modalities"][m]} for m in modalities}
    summary = {"fused_acc": metrics["fused_acc"], "edm": metrics["edm"], "edm_share": metrics["edm_share"],
               "disagreement": decision["disagreement"], "samples": decision["samples"], "split": split}
    return Diagnosis(pd.DataFrame.from_dict(rows, orient="index"), summary)


def main(argv: list[str] | None = None) -> int:
    """``python -m mmlib diagnose RUN_ID``: the stored run's best-epoch model, diagnosed."""
    from mmlib.trained import train_model
    from mmlib.results import find_record
    from mmlib.config import TrainConfig

    parser = argparse.ArgumentParser(prog="python -m mmlib diagnose", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_id", help="a run id of the results store (the name of its .json record)")
    parser.add_argument("--results-dir", default="results/runs", help="the results store (default: results/runs)")
    parser.add_argument("--weights-dir", default="results/weights",
                        help="checkpoints of the store's runs; a run without one is retrained, deterministically "
                             "(default: results/weights)")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--no-probe", action="store_true", help="skip the linear probes")
    parser.add_argument("--figure", default="", help="also save the figure as this PNG")
    args = parser.parse_args(argv)
    if not Path(args.results_dir).is_dir():
        raise ValueError(f"--results-dir {args.results_dir} is not a folder; give the results store that holds "
                         f"{args.run_id}")
    record = find_record(args.results_dir, args.run_id)
    if record is None:
        raise ValueError(f"no record {args.run_id!r} in {args.results_dir}; run ids are the .json names there")
    config = TrainConfig.from_stored(record["config"])
    model, dataset, _ = train_model(config, args.results_dir, args.weights_dir)
    result = diagnose(model, dataset, args.split, config.eval_batch_size, config.eval_seed, probe=not args.no_probe)
    print(f"{args.run_id} on {args.split}: fused {result.summary['fused_acc']:.2f}% | EDM {result.summary['edm']:.2f} "
          f"(sample) {result.summary['edm_share']:.2f} (share) | unimodal predictions disagree on "
          f"{result.summary['disagreement']:.1f}% of samples")
    print(result.table.round(2).to_string())
    if args.figure:
        from mmlib.plots import save_figure

        print(f"figure: {save_figure(result.figure(), args.figure)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
