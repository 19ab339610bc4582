"""The generative model: the denoiser (models), the DDPM ε objective and ancestral sampler (ddpm), training and
sampling loops with their fast CUDA paths (train, fast_train, sample, fast_sample), and the diffusers pipeline a
saved model loads into (pipeline).

Entry points: :func:`collapse_utils.diffusion.train.train_model`, :func:`collapse_utils.diffusion.sample.sample_images`,
:class:`collapse_utils.diffusion.pipeline.CollapsePipeline`.
"""
