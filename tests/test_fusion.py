"""Cross-modal mapping (Eq. 9-11), memory unit (Eq. 12-14), chains and hybrid-order fusion."""

from itertools import permutations

import pytest
import torch

from mmlib.fusion import chain, chain_orders, hybrid_order
from mmlib.mapping import CrossModalMapping, correlation_matrix
from mmlib.memory import MemoryUnit, build_memory


@pytest.mark.parametrize("mode", ["sample", "feature"])
def test_mapping_with_tau_one_leaves_features_unchanged(mode):
    torch.manual_seed(0)
    h, x = torch.randn(6, 4), torch.randn(6, 4)
    assert torch.allclose(CrossModalMapping(mode, tau=1.0)(h, x), x)


def test_sample_mapping_hand_worked():
    h = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # cos(h_r, x_q) = [[1, .707], [0, .707]]; > 0.5 kept, diagonal 1 -> C = [[1, .707], [0, 1]]
    corr = correlation_matrix(h, x, "sample", tau=0.5)
    assert torch.allclose(corr, torch.tensor([[1.0, 2**-0.5], [0.0, 1.0]]), atol=1e-6)
    x_hat = CrossModalMapping("sample", tau=0.5)(h, x)  # C^T x
    assert torch.allclose(x_hat, torch.tensor([[1.0, 0.0], [1.0 + 2**-0.5, 1.0]]), atol=1e-6)


def test_row_normalized_sample_mapping_keeps_weights_summing_to_one():
    torch.manual_seed(1)
    h, x = torch.randn(8, 3), torch.ones(8, 3)
    x_hat = CrossModalMapping("sample", tau=0.0, row_normalize=True)(h, x)
    assert torch.allclose(x_hat, x)  # a convex combination of identical rows is that row


def test_mapping_rejects_tau_outside_unit_interval_and_unknown_mode():
    with pytest.raises(ValueError, match=r"tau .* must lie in \[0, 1\]"):
        CrossModalMapping("sample", tau=1.5)
    with pytest.raises(ValueError, match="mapping mode must be one of"):
        CrossModalMapping("rows")


def test_memory_unit_follows_equations_12_to_14():
    torch.manual_seed(2)
    unit = MemoryUnit(3)
    h, x_hat = torch.randn(4, 3), torch.randn(4, 3)
    f, i, o = torch.sigmoid(unit.gates(torch.cat([h, x_hat], -1))).chunk(3, -1)
    assert torch.allclose(unit(h, x_hat), o * torch.tanh(f * h + i * x_hat))


def test_memory_none_is_the_plain_average():
    h, x = torch.ones(2, 3), 3 * torch.ones(2, 3)
    assert torch.allclose(build_memory("none", 3)(h, x), 2 * torch.ones(2, 3))


def _parts(seed=3, batch=5, dim=4):
    torch.manual_seed(seed)
    features = {m: torch.randn(batch, dim) for m in "abc"}
    return features, CrossModalMapping("sample", tau=0.2), MemoryUnit(dim)


def test_chain_of_one_modality_is_that_modalitys_own_path():
    features, mapping, memory = _parts()
    assert torch.equal(chain(features, ["b"], mapping, memory), features["b"])


def test_hybrid_order_equals_mean_over_explicit_permutations():
    features, mapping, memory = _parts()
    explicit = torch.stack([chain(features, order, mapping, memory) for order in permutations("abc")]).mean(0)
    assert torch.allclose(hybrid_order(features, "abc", mapping, memory), explicit, atol=1e-6)


def test_batched_orders_equal_one_at_a_time():
    features, mapping, memory = _parts()
    orders = [("a", "b"), ("c", "a", "b")[:2]]
    batched = chain_orders(features, orders, mapping, memory)
    for k, order in enumerate(orders):
        assert torch.allclose(batched[k], chain(features, order, mapping, memory), atol=1e-6)


def test_hybrid_order_is_invariant_to_listing_modalities_in_another_order():
    features, mapping, memory = _parts()
    assert torch.allclose(hybrid_order(features, "abc", mapping, memory),
                          hybrid_order(features, "cab", mapping, memory), atol=1e-6)
