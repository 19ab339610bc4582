"""The package's foundation, importable without torch where it can be: the vocabularies (vocab), the presets
(presets), the run configuration and its run key (config), datasets (data), devices and recipes (devices), atomic
files and hashes (io), where runs live (paths), provenance (provenance), shared command-line pieces (cli_common).

The modules the command-line parsers import (vocab, presets, config, methods, cli_common) stay torch-free, and
import nothing of the layers above: ``python -m collapse_utils --help`` loads them alone.

Entry points: :func:`collapse_utils.core.config.make_config`, :class:`collapse_utils.core.config.RunConfig`,
:func:`collapse_utils.core.data.load_dataset`.
"""
