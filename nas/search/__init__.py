"""Architecture search over `nas.space` search spaces.

`adapters` turns a space into what Optuna (define-by-run `OptunaSampler`) and Ray Tune
(`ray_param_space`) sample; `searcher`, `trial`, `recorder` and `driver` run `nas search`.
Importing this package stays light: Optuna and Ray are imported where they are used.
"""

from nas.search.adapters import OptunaSampler, from_ray, ray_param_space

__all__ = ["OptunaSampler", "from_ray", "ray_param_space"]
