"""Unsupervised environment design: PPO trained on levels chosen by a curriculum.

Per update (Jiang et al. 2021; Parker-Holder et al. 2022), one of:
  NEW     — draw fresh levels from the level space (domain randomisation's only mode);
  REPLAY  — sample levels from the PLR buffer by ``(1−ρ)·P_score + ρ·P_staleness``;
  MUTATE  — (ACCEL, right after a replay) edit the replayed levels.
Every env is reset onto its level, a rollout is collected and each level is scored
(positive value loss or MaxMC). The policy is updated on NEW levels for DR and PLR, but
only on REPLAY levels for robust PLR and ACCEL (PLR⊥); scores of NEW/MUTATE levels go into
the buffer, scores of REPLAY levels refresh their entries.

``curriculum="paired"`` runs PAIRED instead (its own state and update, in
:mod:`rlfoundry.curricula.paired`): an adversary builds the levels.

Logged per update: losses and episode statistics, the buffer's fill, score distribution
and staleness, whether the update replayed/mutated/learned, the complexity of the levels
trained on (wall count, shortest path, solvable fraction) and, every ``heldout_every``
updates, the solve rate on the held-out mazes (:mod:`rlfoundry.curricula.observe`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.algos import ppo as feedforward
from rlfoundry.algos import recurrent as lstm
from rlfoundry.algos.base import Algorithm, Policy, make_env_stack, validate_common
from rlfoundry.algos.ppo import PPOConfig, PPOState
from rlfoundry.algos.rollout import EnvCarry, episode_metrics
from rlfoundry.config import check_range, leaf, static
from rlfoundry.curricula import paired
from rlfoundry.curricula.level_buffer import LevelBuffer
from rlfoundry.curricula.levels import level_space
from rlfoundry.curricula.observe import agent_policy, heldout_check, level_complexity
from rlfoundry.curricula.scores import max_mc, positive_value_loss
from rlfoundry.errors import ConfigError

NEW, REPLAY, MUTATE = 0, 1, 2
CURRICULA = ("dr", "plr", "robust_plr", "accel", "paired")
SCORES = ("pvl", "maxmc")


class UEDConfig(PPOConfig):
    """PPO settings plus the curriculum's. Defaults follow the PLR/ACCEL papers where
    they fit a CPU (buffer 4000, replay 0.5... on mazes use the ``ued-maze-*`` presets)."""

    per_env_levels = True  # make_env_stack gives every env its own level

    recurrent: bool = static(False)  # LSTM actor-critic (rlfoundry.algos.recurrent)
    lstm_size: int = static(256)
    curriculum: str = static("plr")
    score: str = static("pvl")
    buffer_size: int = static(512)
    top_k: int = static(0)
    prioritization: str = static("rank")
    num_edits: int = static(5)
    replay_prob: float = leaf(0.5)
    staleness_coef: float = leaf(0.3)
    temperature: float = leaf(0.3)
    min_fill: float = leaf(0.5)
    # PAIRED's adversary (curriculum="paired")
    adversary_walls: int = static(50)
    adversary_lr: float = leaf(1e-4)
    adversary_ent_coef: float = leaf(0.01)
    # held-out maze solve rate measured inside training every K updates (0: never)
    heldout_every: int = static(0)
    heldout_episodes: int = static(2)

    def validate(self) -> None:
        super().validate()
        validate_common(self, UED)
        if self.curriculum not in CURRICULA:
            raise ConfigError(
                f"curriculum must be one of {', '.join(CURRICULA)}, got {self.curriculum!r}."
            )
        if self.score not in SCORES:
            raise ConfigError(f"score must be pvl or maxmc, got {self.score!r}.")
        if self.prioritization not in ("rank", "value"):
            raise ConfigError(f"prioritization must be rank or value, got {self.prioritization!r}.")
        if self.buffer_size <= 0 or self.top_k < 0 or self.num_edits <= 0:
            raise ConfigError("buffer_size and num_edits must be positive and top_k >= 0.")
        for name in ("replay_prob", "staleness_coef", "min_fill"):
            check_range(self, name, 0.0, 1.0)
        check_range(self, "temperature", 0.0, 100.0, low_open=True)
        level_space(self.env)
        if self.heldout_every < 0 or self.heldout_episodes <= 0:
            raise ConfigError("heldout_every must be >= 0 and heldout_episodes positive.")
        if self.heldout_every and self.env != "Maze":
            raise ConfigError(f"heldout_every measures held-out mazes, but env is "
                              f"{self.env!r}; set heldout_every=0.")
        if self.curriculum == "paired":
            self._validate_paired()
        if self.recurrent:
            if self.lstm_size <= 0:
                raise ConfigError(f"lstm_size must be positive, got {self.lstm_size}.")
            if self.num_envs % self.num_minibatches:
                raise ConfigError(
                    f"recurrent PPO splits the {self.num_envs} envs into num_minibatches="
                    f"{self.num_minibatches} groups of whole sequences; pick a divisor of "
                    f"num_envs.")

    def _validate_paired(self) -> None:
        if self.env != "Maze":
            raise ConfigError(f"the paired curriculum builds mazes, but env is {self.env!r}; "
                              "use --env Maze or another curriculum.")
        if self.adversary_walls <= 0:
            raise ConfigError(f"adversary_walls must be positive, got {self.adversary_walls}.")
        check_range(self, "adversary_lr", 0.0, 1.0, low_open=True)
        check_range(self, "adversary_ent_coef", 0.0, 100.0)
        batch = self.num_envs * (2 + self.adversary_walls)
        if batch % self.num_minibatches:
            raise ConfigError(
                f"the adversary's batch num_envs*(2+adversary_walls)={batch} does not divide "
                f"into num_minibatches={self.num_minibatches}; change adversary_walls."
            )


def agent_learner(config: UEDConfig) -> Any:
    """The module with the agent's ``init``, ``networks``, ``rollout_batch`` and
    ``optimise``: feed-forward PPO, or PPO with an LSTM when ``config.recurrent``."""
    return lstm if config.recurrent else feedforward


class UEDState(struct.PyTreeNode):
    ppo: PPOState
    buffer: LevelBuffer
    replay_idx: jax.Array  # [N] buffer slots of the levels last replayed
    mode: jax.Array  # what the last update did
    heldout_solve_rate: jax.Array  # latest in-training held-out measurement (-1: none yet)
    update: jax.Array


def init(config: UEDConfig, key: jax.Array) -> UEDState | paired.PAIREDState:
    if config.curriculum == "paired":
        return paired.init(config, key)
    ppo_key, level_key = jax.random.split(key)
    ppo_state = agent_learner(config).init(config, ppo_key)
    space = level_space(config.env)
    example = jax.tree.map(lambda x: x[0], ppo_state.env_params)
    buffer = LevelBuffer.create(
        space.generate(level_key, example),
        config.buffer_size if config.curriculum != "dr" else 1,
        temperature=config.temperature, staleness_coef=config.staleness_coef,
        top_k=config.top_k, prioritization=config.prioritization,
    )
    return UEDState(
        ppo_state, buffer, jnp.zeros((config.num_envs,), jnp.int32), jnp.int32(NEW),
        jnp.float32(-1.0), jnp.int32(0),
    )


def choose_mode(config: UEDConfig, state: UEDState, key: jax.Array) -> jax.Array:
    if config.curriculum == "dr":
        return jnp.int32(NEW)
    ready = state.buffer.size >= config.min_fill * state.buffer.capacity
    replay = ready & (jax.random.uniform(key) < config.replay_prob)
    mode = jnp.where(replay, REPLAY, NEW)
    if config.curriculum == "accel":
        mode = jnp.where(state.mode == REPLAY, MUTATE, mode)
    return mode.astype(jnp.int32)


def select(mode: jax.Array, options: tuple[Any, Any, Any]) -> Any:
    return jax.tree.map(
        lambda a, b, c: jnp.where(mode == NEW, a, jnp.where(mode == REPLAY, b, c)), *options
    )


def update(config: UEDConfig, state: Any) -> tuple[Any, dict[str, jax.Array]]:
    if config.curriculum == "paired":
        return paired.update(config, state, heldout_check(config))
    stack = make_env_stack(config)
    learner = agent_learner(config)
    actor, critic = learner.networks(config, stack)
    space = level_space(config.env)
    ppo = state.ppo
    (key, mode_key, new_key, replay_key, mut_key, reset_key, rollout_key, noise_key, epoch_key,
     eval_key) = jax.random.split(ppo.key, 10)
    n = config.num_envs

    # 1. choose this update's levels
    mode = choose_mode(config, state, mode_key)
    example = jax.tree.map(lambda x: x[0], ppo.env_params)
    new_levels = jax.vmap(space.generate, in_axes=(0, None))(jax.random.split(new_key, n), example)
    idx, replayed = state.buffer.sample(replay_key, n)
    mutated = jax.vmap(space.mutate, in_axes=(0, 0, None))(
        jax.random.split(mut_key, n), ppo.env_params, config.num_edits
    )
    levels = select(mode, (new_levels, replayed, mutated))

    # 2. reset every env onto its level and collect a scored rollout
    obs, env_state = stack.env.reset(reset_key, levels)
    ppo = ppo.replace(env=EnvCarry(env_state, obs), env_params=levels)
    carry, traj, batch = learner.rollout_batch(config, stack, actor, critic, ppo, rollout_key,
                                               noise_key)
    advantages = batch.advantage.reshape(config.num_steps, n)
    done = traj.episode_done  # this visit's best episode return per level (-inf: none ended)
    best = jnp.where(done, traj.episode_return, -jnp.inf).max(0)
    if config.score == "pvl":
        scores = positive_value_loss(advantages)
    else:  # R_max: the best return ever seen on the level (replayed levels remember theirs)
        r_max = jnp.where(mode == REPLAY, jnp.maximum(best, state.buffer.max_returns[idx]), best)
        r_max = jnp.where(jnp.isfinite(r_max), r_max, 0.0)
        scores = max_mc(batch.value.reshape(config.num_steps, n), r_max)

    # 3. learn (PLR⊥/ACCEL: only on replayed levels)
    robust = config.curriculum in ("robust_plr", "accel")
    learn = (mode == REPLAY) if robust else jnp.bool_(True)
    optimise = lambda: learner.optimise(config, actor, critic, ppo, batch, epoch_key)
    params, opt_state, losses = jax.lax.cond(
        learn,
        optimise,
        lambda: (ppo.params, ppo.opt_state,
                 jax.tree.map(jnp.zeros_like, jax.eval_shape(optimise)[2])),
    )

    # 4. curate the buffer
    buffer = state.buffer
    if config.curriculum != "dr":
        buffer = jax.lax.cond(
            mode == REPLAY,
            lambda b: b.update_replayed(idx, scores, best),
            lambda b: b.insert(levels, scores, best),
            buffer,
        )
    buffer = buffer.tick()

    new_ppo = PPOState(params, opt_state, carry, levels, key, ppo.update + 1)

    # 5. observe: held-out mazes every K updates, complexity of the levels trained on
    solve_rate, measured = state.heldout_solve_rate, jnp.bool_(False)
    check = heldout_check(config)
    if check is not None:
        solve_rate, measured = check(new_ppo, eval_key, state.update, solve_rate)
    metrics = {
        **losses,
        **episode_metrics(traj),
        **buffer.stats(),
        **level_complexity(space, levels),
        "heldout_solve_rate": solve_rate,
        "heldout_measured": measured.astype(jnp.float32),
        "replayed": (mode == REPLAY).astype(jnp.float32),
        "mutated": (mode == MUTATE).astype(jnp.float32),
        "learned": learn.astype(jnp.float32),
        "level_score_mean": scores.mean(),
    }
    replay_idx = jnp.where(mode == REPLAY, idx, state.replay_idx)
    return UEDState(new_ppo, buffer, replay_idx, mode, solve_rate, state.update + 1), metrics


def act(config: UEDConfig, state: Any, obs: jax.Array, key: jax.Array,
        deterministic: bool) -> jax.Array:
    """The agent's action with no memory: feed-forward agents only (evaluation and rendering
    play recurrent ones through :data:`UED`'s ``policy``, which carries the LSTM's state)."""
    if config.recurrent:
        raise ConfigError("this run's agent is recurrent (an LSTM): play it through "
                          "UED.make_policy(config, state, deterministic), which keeps its memory.")
    return feedforward.act(config, state.ppo, obs, key, deterministic)


def policy(config: UEDConfig, state: Any, deterministic: bool) -> Policy:
    """The curriculum's agent as a :data:`Policy`, feed-forward or recurrent."""
    return agent_policy(config, state.ppo, deterministic)


UED = Algorithm(
    name="ued",
    config_cls=UEDConfig,
    init=init,
    update=update,
    act=act,
    policy=policy,
    description="PPO on a curriculum of levels: DR, PLR, robust PLR, ACCEL, PAIRED",
)
