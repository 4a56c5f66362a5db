# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The method, piece by piece
#
# This chapter explains the paper's method in small runnable pieces, each computed by the same
# `mmlib` functions the training uses: the Shapley value that ranks the modalities, the order it
# induces, the cross-modal mapping, the memory unit, hybrid-order fusion, and the equilibrium
# deviation metric (EDM) that the paper uses to score balance {cite:p}`shi2025equilibrium`.
# Nothing is trained here; the equations are numbered so that later chapters can point to them,
# and each names the paper's own equation number. {doc}`main_comparison` then trains the method
# against its baselines, and {doc}`ambiguities` settles the places where the paper leaves a choice
# open.

# %% tags=["parameters"]
tau: float = 0.5  # correlation threshold of the mapping demo (Eq. 10), in [0, 1]
batch: int = 6  # samples in the mapping and fusion demos
dim: int = 4  # feature width in the demos
seed: int = 0  # seed of the random demo tensors

# %% tags=["hide-input"]
import mmlib  # first: pins the CPU numerics before numpy loads (mmlib.numerics)
from itertools import permutations

import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from mmlib.book import setup, show
from mmlib.fusion import chain, hybrid_order
from mmlib.mapping import CrossModalMapping, correlation_matrix
from mmlib.memory import MemoryUnit
from mmlib.scheduler import next_order, prefix_plan
from mmlib.shapley import edm_sample, edm_share, shapley_values

setup()  # figure style, MMLIB_CPU_THREADS threads (the demos read and write no results)
_ = torch.manual_seed(seed)  # (the generator it returns is not shown)

# %% [markdown]
# ## 1. How much does each modality contribute? The Shapley value
#
# Let $v(S)$ be the validation accuracy of the model when only the modalities in $S$ are
# present. The Shapley value of modality $i$ averages the gain of adding $i$ over every group
# of other modalities, weighting groups so that every order of arrival counts equally
# {cite:p}`shapley1953value` (the paper's Eq. 7):
#
# $$
# \phi_i = \sum_{S \subseteq N \setminus \{i\}} \frac{|S|!\,(n-|S|-1)!}{n!}\,
# \bigl(v(S \cup \{i\}) - v(S)\bigr).
# $$ (eq-shapley)
#
# A toy game with three modalities, audio (`a`), visual (`v`) and text (`t`), where each value
# is an accuracy in percent:

# %%
game = {"": 10, "a": 40, "v": 25, "t": 15, "av": 60, "at": 45, "vt": 30, "avt": 70}
values = shapley_values(lambda s: game["".join(m for m in "avt" if m in s)], ["a", "v", "t"])
show(pd.DataFrame({"modality": list(values), "Shapley value (points)": list(values.values())}),
     "Shapley values of the toy game")

# %% [markdown]
# By hand for audio:
# $\tfrac13(40-10) + \tfrac16(60-25) + \tfrac16(45-15) + \tfrac13(70-30) = 34.17$.
# The values add up to $v(N) - v(\emptyset) = 60$ points (efficiency): the whole gain over an
# empty model is shared out.

# %%
glue("method_phi_audio", values["a"], display=False)
glue("method_phi_sum", sum(values.values()), display=False)
order = next_order("shapley", ["a", "v", "t"], epoch=2, shapley=values, seed=0)
steps = [" + ".join(p) for p in sum(prefix_plan(order, "epoch"), [])]
show(pd.DataFrame({"pass": range(1, len(steps) + 1), "training step": steps}),
     f"Next epoch's order: {' → '.join(order)}")

# %% [markdown]
# ## 2. Weakest first
#
# After each epoch the method computes these values on the validation split and trains the
# modalities in ascending order in the next epoch (the paper's Eq. 8):
#
# $$
# \pi^{(t+1)} = \operatorname{argsort}_{\uparrow}\bigl(\phi_1^{(t)}, \dots, \phi_n^{(t)}\bigr).
# $$ (eq-order)
#
# Pass $k$ of the epoch trains the $k$-th
# modality of the order on top of the fused representation of the ones before it, whose
# encoders stay frozen during that pass: they run in inference mode (no dropout, BatchNorm
# running statistics), so their features are computed once at the start of the pass and looked
# up per batch. Text, the weakest here, goes first.
#
# ## 3. Cross-modal mapping
#
# Before a stronger modality joins, its features $X_j$ are re-expressed through their
# correlation with the running representation $h$. In the `sample` reading (this book's default)
# $C_{rq} = \cos(h_r, X_{j,q})$ over the samples of the batch; entries at or below $\tau$ are
# zeroed, the diagonal is set to one, and the mapped features are a correlation-weighted sum
# (the paper's Eqs. 9-11):
#
# $$
# \tilde C_{rq} = \begin{cases} 1 & r = q,\\ C_{rq} & C_{rq} > \tau,\\ 0 & \text{otherwise,}
# \end{cases} \qquad \hat X_j = \tilde C^\top X_j.
# $$ (eq-mapping)

# %%
h, x = torch.randn(batch, dim), torch.randn(batch, dim)
corr = correlation_matrix(h, x, "sample", tau)
samples = [f"sample {q + 1}" for q in range(batch)]
matrix = pd.DataFrame(corr.numpy(), columns=samples).assign(row=samples)[["row", *samples]]
show(matrix, f"C for {batch} samples, tau = {tau}").background_gradient(
    cmap="Blues", vmin=0, vmax=1, subset=samples)

# %% [markdown]
# Each row says how much of a sample's strong features flows into each other sample; with
# $\tau = 1$ nothing survives but the diagonal and the features pass unchanged:

# %%
unchanged = torch.allclose(CrossModalMapping("sample", tau=1.0)(h, x), x)
kept = float((corr > 0).float().mean() - 1 / batch)
glue("method_tau_one_unchanged", str(unchanged), display=False)
glue("method_kept_fraction", 100 * kept, display=False)
print(f"tau = 1 leaves X unchanged: {unchanged}; "
      f"off-diagonal entries kept at tau = {tau}: {100 * kept:.0f}%")

# %% tags=["hide-input"]
# The exercise at the end of the chapter, run on the same tensors: tau = 0 against this tau
for label, level in (("zero", 0.0), ("default", tau)):
    kept_at = correlation_matrix(h, x, "sample", level)
    glue(f"method_ex_kept_{label}", 100 * float((kept_at > 0).float().mean() - 1 / batch),
         display=False)
    glue(f"method_ex_norm_{label}", float(CrossModalMapping("sample", tau=level)(h, x).norm(dim=1)
                                          .mean()), display=False)
glue("method_ex_norm_input", float(x.norm(dim=1).mean()), display=False)

# %% [markdown]
# ## 4. The memory unit
#
# A gate in the manner of an LSTM {cite:p}`hochreiter1997lstm` decides how much of the running
# representation to keep and how much of the mapped newcomer from {eq}`eq-mapping` to write in
# (the paper's Eqs. 12-14):
#
# $$
# \begin{aligned}
# [f; i; o] &= \sigma\bigl(W [h; \hat X_j] + b\bigr),\\
# m &= f \odot h + i \odot \hat X_j,\\
# h' &= o \odot \tanh(m).
# \end{aligned}
# $$ (eq-memory)

# %%
memory, mapping = MemoryUnit(dim), CrossModalMapping("sample", tau=tau)
gates = torch.sigmoid(memory.gates(torch.cat([h, mapping(h, x)], dim=-1))).chunk(3, dim=-1)
show(pd.DataFrame({"gate": ["forget f", "input i", "output o"],
                   "mean over the batch": [float(g.mean()) for g in gates]}),
     "Gates of the untrained memory unit")

# %% [markdown]
# ## 5. Hybrid-order fusion
#
# At test time the order is unknown, so the final representation is averaged over every order
# of the present modalities before the classifier $g$ (the paper's Algorithm 1), with $h_\pi$
# the last output of {eq}`eq-memory` along the order $\pi$:
#
# $$
# \bar h = \frac{1}{k!} \sum_{\pi \in \mathrm{Sym}(k)} h_\pi, \qquad
# p(y \mid x) = \mathrm{softmax}\bigl(g(\bar h)\bigr).
# $$ (eq-hybrid)
#
# The library runs all orders at once on features computed once; the result equals the explicit
# average:

# %%
features = {m: torch.randn(batch, dim) for m in ("a", "v", "t")}
explicit = torch.stack([chain(features, p, mapping, memory) for p in permutations("avt")]).mean(0)
batched = hybrid_order(features, "avt", mapping, memory)
largest = float((explicit - batched).abs().max())
glue("method_hybrid_max_diff", largest, display=False)
print(f"largest difference between batched and explicit averaging over 6 orders: {largest:.1e}")

# %% [markdown]
# ## 6. Measuring balance: the EDM
#
# The paper scores balance (its Sec. 5.1) as
#
# $$
# \mathrm{EDM} = \sum_i \bigl|100\% - \phi_i\bigr|
# $$ (eq-edm)
#
# without saying how $\phi$ is scaled. Two readings are implemented. In the `sample` reading,
# after {cite:t}`wei2024valuation`, every sample plays its own game,
# $v(S) = |S|$ if the modalities in $S$ classify it correctly and 0 otherwise, so a sample that
# every subset gets right gives each modality exactly 1 (100%). Two models on four samples, with
# columns for the subsets $\emptyset$, {a}, {v} and {a, v}:

# %%
balanced = np.array([[0, 1, 1, 1]] * 4, dtype=bool)
lazy = np.array([[0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 1, 1], [0, 1, 0, 0]], dtype=bool)
rows = {}
for name, table in (("balanced model", balanced), ("audio-dominated model", lazy)):
    terms, total = edm_sample(table, ["a", "v"])
    rows[name] = {**{f"EDM {m}": t for m, t in terms.items()}, "EDM": total}
edm_table = pd.DataFrame(rows).T
show(edm_table.rename_axis("model").reset_index(), "EDM terms (%) of two models", digits=1)

# %% [markdown]
# The audio-dominated model gets most samples right from audio alone and loses one when visual
# joins, so both terms grow. The `share` reading instead rescales dataset-level Shapley values
# to shares of $100\% \cdot n$: with the toy game's values,

# %%
share_terms, share_total = edm_share(values)
glue("method_edm_lazy", float(edm_table.loc["audio-dominated model", "EDM"]), display=False)
show(pd.DataFrame({"modality": list(share_terms),
                   "share EDM term (%)": list(share_terms.values())}),
     f"The share reading of the toy game: EDM {share_total:.1f}", digits=1)

# %% [markdown]
# Under the share reading two modalities always get equal terms, which the paper's CREMA-D row
# contradicts; the ambiguities chapter compares the readings on trained models.
#
# ## Summary
#
# In the toy game audio's Shapley value is {glue:text}`method_phi_audio:.2f` points and the three
# values add up to {glue:text}`method_phi_sum:.0f`; with $\tau = 1$ the mapping leaves features
# unchanged ({glue:text}`method_tau_one_unchanged`); batched hybrid order matches the explicit
# average to {glue:text}`method_hybrid_max_diff:.1e`; and the audio-dominated model's EDM is
# {glue:text}`method_edm_lazy:.1f` against 0 for the balanced one.
#
# In equations: {eq}`eq-shapley` values the modalities, {eq}`eq-order` turns the values into the
# next epoch's order, {eq}`eq-mapping` and {eq}`eq-memory` chain the modalities into one
# representation, {eq}`eq-hybrid` removes the dependence on one order at test time, and
# {eq}`eq-edm` scores how balanced the result is.
#
# ```{exercise}
# :label: ex-method-tau
#
# Rerun this chapter with `-p tau 0.0`. Predict first: how many entries of the thresholded
# correlation matrix survive, and does the mapped feature of a sample grow or shrink compared
# with the default `tau = 0.5`?
# ```
#
# ```{solution} ex-method-tau
# :class: dropdown
#
# With $\tau = 0$ every positive correlation survives. On this chapter's demo tensors the share
# of off-diagonal entries kept rises from {glue:text}`method_ex_kept_default:.0f`% (the default
# $\tau$) to {glue:text}`method_ex_kept_zero:.0f`%, and the mean norm of a mapped feature from
# {glue:text}`method_ex_norm_default:.2f` to {glue:text}`method_ex_norm_zero:.2f` (the features
# before mapping: {glue:text}`method_ex_norm_input:.2f`). More neighbours add their features in
# {eq}`eq-mapping` and the mapped features grow with the batch: this is why {doc}`main_comparison`
# also runs the row-normalised form, Ours (row-normalised) (`ours_rownorm`), whose weights of each
# sample sum to one.
# ```
