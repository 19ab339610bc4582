"""The package's foundation, importable without torch where it can be: the vocabularies (vocab), the presets
(presets), the run configuration and its run key (config), datasets (data), devices and recipes (devices), atomic
files and hashes (io), where runs live (paths), provenance (provenance), shared command-line pieces (cli_common).

Entry points: :func:`collapse_utils.core.config.make_config`, :class:`collapse_utils.core.config.RunConfig`,
:func:`collapse_utils.core.data.load_dataset`.
"""
