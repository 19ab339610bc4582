"""The generative model: the model families behind one interface (family: the paper's UNet of models, and a DiT),
the DDPM ε objective and ancestral sampler (ddpm), training and sampling loops with the UNet's fast CUDA paths
(train, fast_train, sample, fast_sample), the diffusers pipeline a saved UNet loads into (pipeline) and a saved
model's card (card).

Entry points: :func:`collapse_utils.diffusion.train.train_model`, :func:`collapse_utils.diffusion.sample.sample_images`,
:class:`collapse_utils.diffusion.pipeline.CollapsePipeline`, :data:`collapse_utils.diffusion.family.FAMILIES`.
"""
