"""PAIRED (Dennis et al., 2020): an adversary builds levels to maximise regret.

Per update:
  1. the adversary builds N levels with the :class:`~rlfoundry.envs.maze_editor.LevelEditor`
     (goal, agent, then one wall per step), sampling from its policy;
  2. the protagonist and the antagonist (two PPO agents) each play a rollout on every
     level and take their PPO update on it;
  3. regret per level = the antagonist's best episode return − the protagonist's mean
     episode return (episodes that ended in the rollout; none counts as 0);
  4. the adversary is trained by PPO with the regret as the reward of its last edit.

The protagonist is the policy that is evaluated (``state.ppo``, like the other curricula).
``total_steps`` counts the protagonist's environment steps; the antagonist takes as many.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from rlfoundry.algos import ppo as feedforward
from rlfoundry.algos import recurrent as lstm
from rlfoundry.algos.advantages import gae
from rlfoundry.algos.base import EnvStack, make_env_stack
from rlfoundry.algos.minibatch import flatten_time
from rlfoundry.algos.ppo import Batch, PPOState, optimise, optimizer
from rlfoundry.algos.rollout import EnvCarry, Transition, episode_metrics
from rlfoundry.curricula.levels import level_space
from rlfoundry.curricula.observe import HeldoutCheck, level_complexity
from rlfoundry.envs import make
from rlfoundry.envs.maze_editor import LevelEditor
from rlfoundry.nets import Critic, DiscreteActor, sample_with_noise


class AdversaryState(struct.PyTreeNode):
    params: Any
    opt_state: Any
    update: jax.Array


class PAIREDState(struct.PyTreeNode):
    ppo: PPOState  # the protagonist
    antagonist: PPOState
    adversary: AdversaryState
    heldout_solve_rate: jax.Array  # latest in-training held-out measurement (-1: none yet)
    update: jax.Array


def editor_for(config: Any) -> LevelEditor:
    """An editor for levels the size of the environment's default level."""
    _, params = make(config.env)
    height, width = params.level.walls.shape
    return LevelEditor(config.adversary_walls, height, width)


def adversary_networks(config: Any, editor: LevelEditor) -> tuple[DiscreteActor, Critic]:
    """A CNN over the whole grid (plus step and noise embedding) with a cell-choosing head."""
    image = editor.image_shape
    actor = DiscreteActor(editor.num_actions, config.hidden_sizes, config.activation, True, image)
    return actor, Critic(config.hidden_sizes, config.activation, True, image)


def adversary_config(config: Any) -> Any:
    """The PPO settings the adversary trains with: the agents' except lr and entropy."""
    return config.replace(lr=config.adversary_lr, ent_coef=config.adversary_ent_coef)


def init(config: Any, key: jax.Array) -> PAIREDState:
    pro_key, ant_key, actor_key, critic_key = jax.random.split(key, 4)
    editor = editor_for(config)
    actor, critic = adversary_networks(config, editor)
    dummy = jnp.zeros((1, editor.obs_size))
    params = {"actor": actor.init(actor_key, dummy), "critic": critic.init(critic_key, dummy)}
    adversary = AdversaryState(params, optimizer(adversary_config(config)).init(params),
                               jnp.int32(0))
    learner = lstm if config.recurrent else feedforward
    return PAIREDState(learner.init(config, pro_key), learner.init(config, ant_key), adversary,
                       jnp.float32(-1.0), jnp.int32(0))


def build_levels(
    config: Any, editor: LevelEditor, actor: Any, critic: Any, adversary: AdversaryState,
    template: Any, key: jax.Array,
) -> tuple[Any, Batch]:
    """Step 1: N levels built by the adversary (``template``: the agents' batched env
    params, whose levels are replaced) and its [T, N] trajectory, advantages still 0."""
    n = config.num_envs
    reset_key, noise_key = jax.random.split(key)
    states = jax.vmap(editor.reset)(jax.random.split(reset_key, n))
    gumbel = jax.random.gumbel(noise_key, (editor.num_steps, n, editor.num_actions))

    def edit(s: Any, g: jax.Array) -> tuple[Any, tuple[jax.Array, jax.Array, jax.Array]]:
        obs = jax.vmap(editor.observation)(s)
        action, log_prob = sample_with_noise(actor.apply(adversary.params["actor"], obs), g)
        return jax.vmap(editor.step)(s, action), (obs, action, log_prob)

    final, (obs, action, log_prob) = jax.lax.scan(edit, states, gumbel)
    values = critic.apply(adversary.params["critic"], obs)
    levels = template.replace(level=jax.vmap(editor.level)(final))
    zeros = jnp.zeros_like(values)
    return levels, Batch(obs, action, log_prob, values, zeros, zeros, jnp.ones_like(values))


def level_returns(traj: Transition) -> tuple[jax.Array, jax.Array]:
    """Per environment (= level): mean and best return of the episodes that ended in the
    rollout, 0 when none did (on a maze, an unfinished episode has earned nothing yet)."""
    done = traj.episode_done
    count = done.sum(0)
    mean = jnp.where(done, traj.episode_return, 0.0).sum(0) / jnp.maximum(count, 1)
    best = jnp.where(done, traj.episode_return, -jnp.inf).max(0)
    return mean, jnp.where(count > 0, best, 0.0)


def regret(protagonist: Transition, antagonist: Transition) -> jax.Array:
    """PAIRED's regret per level: antagonist's best return − protagonist's mean return."""
    return level_returns(antagonist)[1] - level_returns(protagonist)[0]


def adversary_rewards(level_regret: jax.Array, num_steps: int) -> jax.Array:
    """[T, N] rewards of the adversary's episode: the regret, paid on its last edit."""
    return jnp.zeros((num_steps, *level_regret.shape)).at[-1].set(level_regret)


def train_agent(
    config: Any, stack: EnvStack, agent: PPOState, levels: Any
) -> tuple[PPOState, Transition, dict[str, jax.Array]]:
    """Step 2 for one agent: reset every env onto its level, roll out, PPO update."""
    learner = lstm if config.recurrent else feedforward
    actor, critic = learner.networks(config, stack)
    key, reset_key, rollout_key, noise_key, epoch_key = jax.random.split(agent.key, 5)
    obs, env_state = stack.env.reset(reset_key, levels)
    agent = agent.replace(env=EnvCarry(env_state, obs), env_params=levels)
    carry, traj, batch = learner.rollout_batch(config, stack, actor, critic, agent, rollout_key,
                                               noise_key)
    params, opt_state, losses = learner.optimise(config, actor, critic, agent, batch, epoch_key)
    return PPOState(params, opt_state, carry, levels, key, agent.update + 1), traj, losses


def train_adversary(
    config: Any, actor: Any, critic: Any, adversary: AdversaryState, trajectory: Batch,
    level_regret: jax.Array, key: jax.Array,
) -> tuple[AdversaryState, dict[str, jax.Array]]:
    """Step 4: PPO on the adversary's episodes, rewarded by regret at the last edit."""
    steps = trajectory.value.shape[0]
    rewards = adversary_rewards(level_regret, steps)
    last = jnp.zeros(rewards.shape, bool).at[-1].set(True)
    next_values = jnp.concatenate([trajectory.value[1:], jnp.zeros_like(trajectory.value[:1])])
    advantages, targets = gae(rewards, trajectory.value, next_values, last,
                              jnp.zeros_like(last), config.gamma, config.gae_lambda)
    batch = flatten_time(trajectory.replace(advantage=advantages, target=targets))
    params, opt_state, losses = optimise(adversary_config(config), actor, critic, adversary,
                                         batch, key)
    return AdversaryState(params, opt_state, adversary.update + 1), losses


def update(
    config: Any, state: PAIREDState, heldout: HeldoutCheck | None = None
) -> tuple[PAIREDState, dict[str, jax.Array]]:
    """One PAIRED update (steps 1-4 of the module docstring), then the held-out check
    (:func:`rlfoundry.curricula.observe.heldout_check`) if given."""
    stack = make_env_stack(config)
    editor = editor_for(config)
    adv_actor, adv_critic = adversary_networks(config, editor)
    # the agents split their own keys; the adversary's come from the protagonist's
    build_key, adv_key, eval_key = jax.random.split(jax.random.fold_in(state.ppo.key, 1), 3)

    levels, trajectory = build_levels(config, editor, adv_actor, adv_critic, state.adversary,
                                      state.ppo.env_params, build_key)
    protagonist, pro_traj, pro_losses = train_agent(config, stack, state.ppo, levels)
    antagonist, ant_traj, ant_losses = train_agent(config, stack, state.antagonist, levels)
    level_regret = regret(pro_traj, ant_traj)
    adversary, adv_losses = train_adversary(config, adv_actor, adv_critic, state.adversary,
                                            trajectory, level_regret, adv_key)

    solve_rate, measured = state.heldout_solve_rate, jnp.bool_(False)
    if heldout is not None:
        solve_rate, measured = heldout(protagonist, eval_key, state.update, solve_rate)
    pro_mean, _ = level_returns(pro_traj)
    _, ant_best = level_returns(ant_traj)
    metrics = {
        **pro_losses,
        **episode_metrics(pro_traj),
        **{f"antagonist_{k}": v for k, v in {**ant_losses, **episode_metrics(ant_traj)}.items()},
        **{f"adversary_{k}": v for k, v in adv_losses.items()},
        **level_complexity(level_space(config.env), levels),
        "regret": level_regret.mean(),
        "protagonist_level_return": pro_mean.mean(),
        "antagonist_level_return": ant_best.mean(),
        "heldout_solve_rate": solve_rate,
        "heldout_measured": measured.astype(jnp.float32),
    }
    new = PAIREDState(protagonist, antagonist, adversary, solve_rate, state.update + 1)
    return new, metrics
