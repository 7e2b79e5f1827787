"""Search spaces: a base spec plus named choices, declared in YAML and sampled by any searcher.

`model` (Choice, SearchSpace: a point -> its NetSpec), `sampling` (the Chooser protocol,
RandomChooser), `file` (the YAML format: read, checked, shipped spaces by name). The names
below are the package's public API.
"""

from nas.space.file import load_space, parse_space, read_space, space_names
from nas.space.model import Choice, SearchSpace, option_key, same
from nas.space.sampling import Chooser, RandomChooser

__all__ = ["Choice", "Chooser", "RandomChooser", "SearchSpace", "load_space", "option_key", "parse_space",
           "read_space", "same", "space_names"]
