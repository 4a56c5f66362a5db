"""mmlib: a thin PyTorch library for the Modality Equilibrium reproducibility book."""
