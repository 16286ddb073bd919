"""Data-parallel training over the devices of this process.

A one-axis `Mesh` named `"batch"` spans the first `n` local devices. The model and the
optimiser state are replicated on every device of the mesh, and each minibatch
`(batch, ...)` is split along its first axis, `batch / n` sequences per device. The
jitted train step is unchanged: XLA's SPMD partitioner sees the shardings of its inputs,
runs the per-sequence work on each device's share and all-reduces the batch mean (the
loss) and so the gradient. The result equals single-device training on the same global
batch up to float rounding (the batch sum is added in another order).

With one device none of this is used, so the single-device path stays bit-identical.
"""

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Shaped

BATCH_AXIS = "batch"
CPU_HINT = (
    "on CPU, set XLA_FLAGS=--xla_force_host_platform_device_count=N in the environment "
    "before jax is imported to split the host into N devices"
)


def resolve_devices(devices: int | str, batch_size: int) -> int:
    """The number of devices to train on.

    **Arguments:**

    - `devices`: a count >= 1, or `"auto"` for every local device (`jax.local_devices()`).
    - `batch_size`: the global batch (sequences per optimiser step), which must be a
      multiple of the count.

    **Returns:** the count. Raises `ValueError` for a count that is not a positive
    integer or `"auto"`, for more devices than this process has, and for a batch that
    the devices cannot share equally.
    """
    available = jax.local_devices()
    if devices == "auto":
        n = len(available)
    elif isinstance(devices, int | np.integer) and not isinstance(devices, bool) and devices >= 1:
        n = int(devices)
    else:
        raise ValueError(f"devices must be a positive integer or 'auto', got {devices!r}")
    if n > len(available):
        kind = available[0].platform
        raise ValueError(
            f"devices={n} asked for, but this process has only {len(available)} local "
            f"{kind} device(s); {CPU_HINT}"
        )
    if batch_size % n:
        raise ValueError(
            f"batch_size {batch_size} is not divisible by the {n} devices: data-parallel "
            f"training gives every device batch_size / devices sequences; choose a batch "
            f"size that is a multiple of {n} (or fewer devices)"
        )
    return n


def batch_mesh(n: int) -> Mesh:
    """A one-axis mesh `("batch",)` over the first `n` local devices."""
    return Mesh(np.array(jax.local_devices()[:n]), (BATCH_AXIS,))


def replicate(tree, mesh: Mesh):
    """`tree` with every array leaf copied whole onto every device of `mesh`; other
    leaves (static fields, functions) are left as they are."""
    arrays, static = eqx.partition(tree, eqx.is_array)
    arrays = jax.device_put(arrays, NamedSharding(mesh, PartitionSpec()))
    return eqx.combine(arrays, static)


def shard_batch(
    mesh: Mesh, array: Shaped[np.ndarray, "..."], axis: int = 0
) -> Shaped[Array, "..."]:
    """`array` split along its batch `axis` (e.g. `(batch, ...)`, or `(steps, batch,
    ...)` with `axis=1`) over the devices of `mesh` (`batch / n` rows each; `batch`
    must be a multiple of the mesh size)."""
    spec = PartitionSpec(*[None] * axis, BATCH_AXIS)
    return jax.device_put(array, NamedSharding(mesh, spec))


def to_default_device(tree):
    """`tree` with every array leaf on the first local device only (undoes `replicate`,
    so a trained model behaves like one trained on a single device)."""
    arrays, static = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.device_put(arrays, jax.local_devices()[0]), static)
