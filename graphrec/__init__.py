"""graphrec: graph-based recommendation with GNNs, BERT text features and explanations."""

from graphrec.errors import ConfigError, DataFormatError, DatasetNotFoundError, GraphrecError, UnknownIdError

__version__ = "0.1.0"

__all__ = ["ConfigError", "DataFormatError", "DatasetNotFoundError", "GraphrecError", "UnknownIdError", "__version__"]
