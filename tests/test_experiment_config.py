"""Fuzzing the config parser: whatever a user writes, the answer is a config or a one-line
RLFoundryError, never a traceback."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlfoundry.errors import RLFoundryError
from rlfoundry.experiment.configure import resolve

NAMES = ["env", "total_steps", "num_envs", "num_steps", "update_epochs", "num_minibatches",
         "network", "hidden_sizes", "activation", "anneal_lr", "lr", "gamma", "ent_coef",
         "objective", "objective.clip_eps", "objective.kind", "kind", "clip_eps", "algo",
         "config", "seeds", "chunk_updates", "description", "normalize_observations"]

keys = st.one_of(st.sampled_from(NAMES), st.text(string.ascii_letters + "._-", max_size=12))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.sampled_from(["CartPole-v1", "ppo", "ppo_clip", "cnn", "1e-3", "[64, 64]", "-1", "0"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, max_size=6)

_TMP = Path(tempfile.mkdtemp(prefix="rlfoundry-fuzz-"))


def only_user_errors(fn, *args, **kwargs) -> None:  # noqa: ANN001
    try:
        fn(*args, **kwargs)
    except RLFoundryError as err:
        msg = str(err)
        assert msg and "\n" not in msg, repr(msg)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_structured_yaml_documents(doc: dict) -> None:
    path = _TMP / "doc.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    only_user_errors(resolve, config_file=str(path))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_arbitrary_text_files(text: str) -> None:
    path = _TMP / "text.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    only_user_errors(resolve, config_file=str(path))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(keys, st.one_of(st.text(max_size=15), scalars.map(str))),
                max_size=3))
def test_set_overrides(pairs: list[tuple[str, str]]) -> None:
    only_user_errors(resolve, sets=[f"{k}={v}" for k, v in pairs])


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=12)), st.one_of(st.none(), st.text(max_size=12)))
def test_algo_and_preset_names(algo: str | None, preset: str | None) -> None:
    only_user_errors(resolve, algo=algo, preset=preset)
