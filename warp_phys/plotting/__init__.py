"""Figures of WARP models: each `plot_*` function returns a matplotlib `Figure` (nothing
is shown or saved unless asked; `save_figure` writes PNG, PDF or SVG), so they work
headless and in notebooks alike.

| figure | function | what it shows |
|---|---|---|
| reconstruction | `plot_reconstruction`, `plot_forecast` | truth, context, forecast (+-2 std) |
| weights | `plot_weights` | theta_t heat map per tensor, norms over time |
| belief | `plot_belief` | every theta_t decoded over the whole time grid |
| trajectory | `plot_trajectory` | PCA of theta_t vs gradient descent on the same sequence |
| physics | `plot_physics` | physical parameters read from theta_t vs the true ones |
| transition | `plot_transition` | spectrum and diagonal of A, A - I, B |

`plot_run(kind, run)` draws any of them (`KINDS`) from a loaded run folder, with the
channel names, units and true parameters its system declares.

Model-level functions take a trajectory in data units and the model's `normalizer`; the
numbers behind them (`belief_matrix`, `gradient_descent_trajectory`, `pca`,
`transition_summary`, `state_trajectory`) are public too; the physical parameters
behind `plot_physics` are `warp_phys.parameter_trajectory`.
"""

from .._identify import state_trajectory
from ._belief import belief_matrix, plot_belief
from ._common import FORMATS, save_figure, weight_groups
from ._physics import plot_physics
from ._reconstruction import plot_forecast, plot_reconstruction
from ._run import KINDS, plot_run
from ._trajectory import gradient_descent_trajectory, pca, plot_trajectory, sequence_mse
from ._transition import plot_transition, transition_summary
from ._weights import plot_weights

__all__ = [
    "FORMATS",
    "KINDS",
    "belief_matrix",
    "gradient_descent_trajectory",
    "pca",
    "plot_belief",
    "plot_forecast",
    "plot_physics",
    "plot_reconstruction",
    "plot_run",
    "plot_trajectory",
    "plot_transition",
    "plot_weights",
    "save_figure",
    "sequence_mse",
    "state_trajectory",
    "transition_summary",
    "weight_groups",
]
