"""Reading what a language agent did: transcripts and success rates of a saved run.

``play`` replays the run's policy in fresh dialogues (one compiled rollout, the same
function training uses); ``transcript`` prints one dialogue turn by turn, with the
environment's hidden task (the secret number, the map, the question) for context.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from rlfoundry.language.learners import layout, model_for, text_env
from rlfoundry.language.text_env import TextEnv
from rlfoundry.language.trajectory import Trajectory, rollout


def play(config: Any, params: Any, episodes: int, key: jax.Array, greedy: bool = True
         ) -> tuple[Trajectory, jax.Array]:
    """``episodes`` dialogues with ``params`` (one seed's); returns them and their reset keys."""
    env = text_env(config.env)
    model = model_for(config, env)
    reset_key, roll_key = jax.random.split(key)
    reset_keys = jax.random.split(reset_key, episodes)
    run = jax.jit(lambda p, r, k: rollout(model, p, env, env.default_params, r, k,
                                          config.temperature, layout(config, env).turns,
                                          greedy))
    return run(params, reset_keys, roll_key), reset_keys


def transcript(env: TextEnv, traj: Trajectory, i: int, reset_key: jax.Array | None = None) -> str:
    """Dialogue ``i`` of ``traj`` as text, one line per message."""
    lines = []
    if reset_key is not None and hasattr(env, "describe"):
        _, state = env.reset(reset_key, env.default_params)
        lines.append(f"[{env.describe(state)}]")
    obs, act = np.asarray(traj.turn_obs[i]), np.asarray(traj.turn_action[i])
    rew, valid = np.asarray(traj.turn_reward[i]), np.asarray(traj.turn_valid[i])
    for t in range(obs.shape[0]):
        if not valid[t]:
            break
        lines.append(f"  env  : {env.vocab.text(obs[t])}")
        reward = f"   (reward {rew[t]:+.2f})" if rew[t] else ""
        lines.append(f"  agent: {env.vocab.text(act[t])}{reward}")
    ok = bool(np.asarray(traj.success[i]))
    lines.append(f"[{'solved' if ok else 'not solved'}; return "
                 f"{float(np.asarray(traj.episode_return[i])):.2f}]")
    return "\n".join(lines)


def transcripts(config: Any, params: Any, episodes: int, seed: int = 0, greedy: bool = True
                ) -> str:
    env = text_env(config.env)
    traj, keys = play(config, params, episodes, jax.random.PRNGKey(seed), greedy)
    return "\n\n".join(f"episode {i + 1}\n{transcript(env, traj, i, keys[i])}"
                       for i in range(episodes))


def success_rate(config: Any, params: Any, episodes: int, seed: int = 0, greedy: bool = True
                 ) -> dict[str, float]:
    traj, _ = play(config, params, episodes, jax.random.PRNGKey(seed), greedy)
    return {"success": float(np.asarray(traj.success).mean()),
            "mean_return": float(np.asarray(traj.episode_return).mean()),
            "mean_turns": float(np.asarray(traj.num_turns).mean())}


def is_text_run(config: Any) -> bool:
    from rlfoundry.envs import make

    return isinstance(make(getattr(config, "env", ""))[0], TextEnv) if hasattr(
        config, "env") else False


def _one_seed(trained: Any, index: int) -> Any:
    from rlfoundry.experiment.evaluate import select_seeds

    state, _ = select_seeds(trained, index)
    return jax.tree.map(lambda x: x[0], state.params)


def render_run(folder: Any, episodes: int = 3, seed_index: int = 0, seed: int = 0,
               greedy: bool = True, checkpoint: int | None = None) -> str:
    """Transcripts of a saved text run's policy (``rlfoundry render``)."""
    from rlfoundry.experiment.evaluate import load_trained

    trained = load_trained(folder, checkpoint)
    params = _one_seed(trained, seed_index)
    head = (f"{trained.spec.algo} on {trained.spec.config.env}, seed "
            f"{list(trained.spec.seeds)[seed_index]}, after {trained.update} updates "
            f"({'greedy' if greedy else 'sampled'} decoding)")
    return head + "\n\n" + transcripts(trained.spec.config, params, episodes, seed, greedy)


def eval_run(folder: Any, episodes: int = 100, seed: int = 0, seed_index: int | None = None,
             greedy: bool = True, checkpoint: int | None = None) -> dict[str, Any]:
    """Success rate and return per seed of a saved text run (``rlfoundry eval``)."""
    from rlfoundry.experiment.evaluate import load_trained

    trained = load_trained(folder, checkpoint)
    seeds = list(trained.spec.seeds)
    indices = range(len(seeds)) if seed_index is None else [seed_index]
    per_seed = {seeds[i]: success_rate(trained.spec.config, _one_seed(trained, i), episodes,
                                       seed, greedy) for i in indices}
    return {"algo": trained.spec.algo, "env": trained.spec.config.env,
            "update": trained.update, "greedy": greedy, "episodes": episodes,
            "per_seed": per_seed,
            "success": float(np.mean([r["success"] for r in per_seed.values()])),
            "mean_return": float(np.mean([r["mean_return"] for r in per_seed.values()]))}
