"""Dynamical systems and their data sets, integrated with diffrax.

```python
import systems
data = systems.generate("msd", 1024, split="train", seed=0)   # Dataset
data.t, data.y, data.params, data.y0                          # (T,), (N, T, D), {k: (N,)}, (N, D)
```

Your own trajectories: `systems.load("data.csv")` reads `.npz`, `.npy`, `.csv` (long
table `trajectory, time, <channels>` or one file per trajectory) into the same
`Dataset`; `from_arrays` validates arrays in memory.

Built-ins: `msd`, `msd_zero`, `msd_irregular`, `lotka_volterra`, `lotka_volterra_repeat`, `sine`,
`lorenz63`, `pendulum`. Add your own with `from_vector_field` + `register_system`, or
by subclassing `AbstractSystem`.
"""

from . import lorenz63, lotka_volterra, msd, pendulum, sine  # noqa: F401  (registers built-ins)
from ._base import SPLITS as SPLITS
from ._base import AbstractSystem as AbstractSystem
from ._cache import cache_path as cache_path
from ._cache import generate_cached as generate_cached
from ._dataset import Dataset as Dataset
from ._dataset import carve_validation as carve_validation
from ._dataset import save as save
from ._dataset import subset as subset
from ._files import FORMATS as FORMATS
from ._files import from_arrays as from_arrays
from ._files import load as load
from ._files import save_csv as save_csv
from ._files import trajectory_times as trajectory_times
from ._function import FunctionSystem as FunctionSystem
from ._function import from_vector_field as from_vector_field
from ._generate import generate as generate
from ._io import atomic_path as atomic_path
from ._io import atomic_write_bytes as atomic_write_bytes
from ._io import atomic_write_json as atomic_write_json
from ._registry import get_system as get_system
from ._registry import list_systems as list_systems
from ._registry import register_system as register_system
from .lorenz63 import Lorenz63 as Lorenz63
from .lotka_volterra import LotkaVolterra as LotkaVolterra
from .lotka_volterra import repeat_copy as repeat_copy
from .msd import MassSpringDamper as MassSpringDamper
from .pendulum import Pendulum as Pendulum
from .sine import Sine as Sine
