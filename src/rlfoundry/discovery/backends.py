"""Where a generation's population of inner trainings runs.

``vmap`` (default): one compiled program over the whole population in this process.
``ray``: the population is split into ``shards`` contiguous slices, each a Ray task (one
CPU) that rebuilds the search from its JSON config and runs the *same* compiled evaluation
on its slice; the slices are concatenated in order. Members are independent, pure
functions of (θ_i, key), so both backends give the same fitness for the same seed. Ray is
local (started here, on loopback) unless ``ray_address`` names a cluster.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from typing import Any

import jax
import numpy as np

from rlfoundry.errors import ConfigError


class VmapBackend:
    """The whole population in one compiled program, in this process."""

    def evaluate(self, search: Any, thetas: jax.Array, *args: Any) -> Any:
        return search.evaluate_population(thetas, *args)

    def close(self) -> None:
        pass


_WORKER_SEARCHES: dict[str, Any] = {}


def evaluate_shard(config_json: str, thetas: np.ndarray, args: tuple[Any, ...],
                   cache_dir: str | None = None) -> Any:
    """A Ray task: the search's compiled evaluation on one slice of the population (the
    search and its compiled programs are cached per worker process; with ``cache_dir``,
    the driver's persistent compilation cache, a new worker loads them from disk when any
    worker of this or an earlier run compiled them)."""
    from rlfoundry.discovery.run import config_from_json, make_search

    search = _WORKER_SEARCHES.get(config_json)
    if search is None:
        if cache_dir:
            from rlfoundry.experiment import compile_cache

            compile_cache.enable(cache_dir)
        config = config_from_json(json.loads(config_json))
        search = make_search(config, backend=VmapBackend())
        _WORKER_SEARCHES[config_json] = search
    return jax.device_get(search.evaluate_population(thetas, *args))


class RayBackend:
    """Population shards as Ray tasks, on a local Ray or the cluster at ``address``."""

    def __init__(self, config: Any):
        try:
            import ray
        except ImportError:
            raise ConfigError("the ray backend needs Ray: pip install ray==2.60.0") from None
        from rlfoundry.discovery.objective_search import program_key
        from rlfoundry.discovery.run import config_to_json

        self.ray = ray
        self.shards = config.shards
        # the driver's persistent compilation cache (the CLI turns it on), shared by workers
        self.cache_dir = jax.config.jax_compilation_cache_dir or None
        self.config_json = json.dumps(config_to_json(program_key(config)), sort_keys=True)
        self.started_here = not ray.is_initialized()
        if self.started_here:
            kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False,
                                      "include_dashboard": False}
            # workers import this rlfoundry, single-threaded XLA as here
            env = {k: os.environ[k] for k in ("PYTHONPATH", "XLA_FLAGS", "JAX_PLATFORMS")
                   if k in os.environ}
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*os.fork.*")
                    if config.ray_address:
                        ray.init(address=config.ray_address, **kwargs)
                    else:
                        ray.init(num_cpus=config.shards, _node_ip_address="127.0.0.1",
                                 runtime_env={"env_vars": env}, **kwargs)
            except Exception as err:  # noqa: BLE001 - connection problems come in many types
                where = (f"the Ray cluster at {config.ray_address}" if config.ray_address
                         else "a local Ray")
                raise ConfigError(f"cannot start {where} ({type(err).__name__}: {err}); check "
                                  "--ray-address or use --backend vmap.") from None
        self.task = ray.remote(num_cpus=1)(evaluate_shard)

    def evaluate(self, search: Any, thetas: jax.Array, *args: Any) -> Any:
        thetas = np.asarray(jax.device_get(thetas))
        args = tuple(jax.device_get(args))
        bounds = np.linspace(0, len(thetas), min(self.shards, len(thetas)) + 1).astype(int)
        refs = [self.task.remote(self.config_json, thetas[a:b], args, self.cache_dir)
                for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        t0 = time.perf_counter()
        parts = self.ray.get(refs)  # time in the workers' compiled programs (and transfer)
        search.compiled_seconds += time.perf_counter() - t0
        return jax.tree.map(lambda *xs: np.concatenate(xs, axis=0), *parts)

    def close(self) -> None:
        if self.started_here and self.ray.is_initialized():
            self.ray.shutdown()


def make_backend(config: Any) -> VmapBackend | RayBackend:
    return RayBackend(config) if config.backend == "ray" else VmapBackend()
