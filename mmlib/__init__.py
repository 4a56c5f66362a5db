"""mmlib: a thin PyTorch library for the Modality Equilibrium reproducibility book."""

from mmlib.numerics import pin_environment

pin_environment()  # before torch computes anything: the same bits on every AVX2 CPU (mmlib.numerics)


def diagnose(model, dataset, **options):
    """Imbalance diagnostic of ``model`` on ``dataset``: :func:`mmlib.diagnosis.diagnose` (imported on first use)."""
    from mmlib.diagnosis import diagnose as run

    return run(model, dataset, **options)
