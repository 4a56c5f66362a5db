# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The method, worked by hand
#
# This chapter answers one question: what exactly does the method compute? The paper claims that
# training the weakest modality first (measured by Shapley value), aligning it to a stronger one
# through a thresholded correlation map, and carrying what was learned in a gated memory brings the
# modalities' contributions into balance. Nothing here trains a model; every cell is a small
# example you can check with pencil and paper.

# %% tags=["parameters"]
tau: float = 0.2  # correlation threshold of the mapping (paper Eq. 10)
seed: int = 0  # seed of the random demo tensors

# %%
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from mmlib.fusion import chain, hybrid_order
from mmlib.mapping import CrossModalMapping, correlation_matrix
from mmlib.memory import MemoryUnit
from mmlib.shapley import all_subsets, edm_sample, edm_share, shapley_values

torch.manual_seed(seed)

# %% [markdown]
# ## Shapley values of a toy game
#
# A modality's Shapley value is its marginal contribution averaged over every order in which the
# modalities could join:
#
# $$\phi_i = \sum_{S \subseteq N \setminus \{i\}} \frac{|S|!\,(n-|S|-1)!}{n!}\,\big(v(S\cup\{i\}) - v(S)\big).$$
#
# Take three modalities with accuracies (%) per subset:

# %%
toy = {(): 10, ("a",): 60, ("v",): 40, ("t",): 30, ("a", "v"): 75, ("a", "t"): 70, ("v", "t"): 50, ("a", "v", "t"): 80}
value = lambda s: toy[tuple(m for m in ("a", "v", "t") if m in s)]
phi = shapley_values(value, ["a", "v", "t"])
pd.Series(phi, name="Shapley value (points)").to_frame().style.format("{:.2f}")

# %% [markdown]
# By hand, for `a`: the six orders give marginal gains 50, 50 (a first), 35 (after v), 40 (after t),
# 30 (after v,t) twice, so $\phi_a = (50+50+35+40+30+30)/6 = 39.17$. The values sum to
# $v(N) - v(\emptyset) = 70$ (efficiency):

# %%
by_hand_a = (50 + 50 + 35 + 40 + 30 + 30) / 6
assert abs(phi["a"] - by_hand_a) < 1e-9 and abs(sum(phi.values()) - 70) < 1e-9
glue("toy_phi_a", phi["a"], display=False)
print(f"phi_a by hand {by_hand_a:.2f}, by shapley_values {phi['a']:.2f}; sum {sum(phi.values()):.2f}")

# %% [markdown]
# ## EDM in its two readings
#
# The paper's equilibrium deviation metric is $\mathrm{EDM} = \sum_i |100\% - \phi(M_i)|$. In the
# **sample** reading each sample plays the game $v(S) = |S|$ if the prediction from $S$ is right,
# else 0; in the **share** reading dataset-level Shapley values are rescaled to shares summing to
# $100\,n$. Here two models are scored on four samples; columns are subsets by bitmask
# (none, a, v, a+v).

# %%
players = ["a", "v"]
balanced = np.array([[0, 1, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1], [0, 0, 0, 1]], dtype=bool)
lopsided = np.array([[0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1], [0, 0, 0, 1]], dtype=bool)
rows = []
for name, table in [("balanced", balanced), ("lopsided", lopsided)]:
    terms, total = edm_sample(table, players)
    acc = table.mean(axis=0) * 100
    phi_ds = shapley_values(lambda s: acc[sum(1 << k for k, p in enumerate(players) if p in s)], players)
    sterms, stotal = edm_share(phi_ds)
    rows.append({"model": name, "EDM sample": total, "EDM share": stotal, **{f"sample term {m}": terms[m] for m in players}})
edm_demo = pd.DataFrame(rows).set_index("model")
glue("edm_demo_lopsided", edm_demo.loc["lopsided", "EDM sample"], display=False)
edm_demo.style.format("{:.1f}")

# %% [markdown]
# Both readings score the lopsided model (one modality carries every correct answer) as further
# from equilibrium; in the sample reading it has EDM {glue:text}`edm_demo_lopsided:.1f`.
#
# ## The cross-modal mapping
#
# $C_{rq} = \cos(h_r, x_q)$, entries $\le \tau$ set to zero, unit diagonal; $\hat x = C^\top x$
# (sample reading). A batch of four samples with 3-dimensional features:

# %%
h, x = torch.randn(4, 3), torch.randn(4, 3)
C = correlation_matrix(h, x, "sample", tau)
x_hat = CrossModalMapping("sample", tau)(h, x)
pd.DataFrame(C.numpy()).style.format("{:.2f}")

# %% [markdown]
# Off-diagonal entries below $\tau$ are zero, so each sample borrows only from neighbours it
# correlates with; `x_hat` has the shape of `x` ({glue:text}`xhat_shape`).

# %%
glue("xhat_shape", str(tuple(x_hat.shape)), display=False)

# %% [markdown]
# ## The memory unit and hybrid-order fusion
#
# $[f; i; o] = \sigma(W[h; \hat x] + b)$, $m = f \odot h + i \odot \hat x$, $h' = o \odot \tanh(m)$.
# Hybrid order averages the chain's output over all $k!$ orders:

# %%
memory = MemoryUnit(3)
features = {"a": torch.randn(4, 3), "v": torch.randn(4, 3), "t": torch.randn(4, 3)}
mapping = CrossModalMapping("sample", tau)
with torch.no_grad():
    one = chain(features, ("a", "v", "t"), mapping, memory)
    other = chain(features, ("t", "v", "a"), mapping, memory)
    mixed = hybrid_order(features, ["a", "v", "t"], mapping, memory)
gap = float((one - other).abs().mean())
glue("order_gap", gap, display=False)
print(f"mean |h(a,v,t) - h(t,v,a)| = {gap:.3f}; hybrid output shape {tuple(mixed.shape)}")

# %% [markdown]
# The order matters (mean absolute difference {glue:text}`order_gap:.3f` between two orders on
# random features), which is why inference averages over all orders.
