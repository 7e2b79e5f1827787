"""Search spaces: a base spec plus named choices, declared in YAML and sampled by any searcher.

`model` (Choice, SearchSpace: a point -> its NetSpec; the Chooser protocol, RandomChooser, OptunaChooser),
`file` (the YAML format: read, checked, shipped spaces by name).
"""

from nas.space.file import load_space, parse_space, read_space, space_names
from nas.space.model import Choice, Chooser, OptunaChooser, RandomChooser, SearchSpace, option_key, same

__all__ = ["Choice", "Chooser", "OptunaChooser", "RandomChooser", "SearchSpace", "load_space", "option_key", "parse_space",
           "read_space", "same", "space_names"]
