"""Learned rewards: the Bradley–Terry model recovers a known reward ordering, the blend
search moves a misleading weight down, and the reward-design loop talks to a local
OpenAI-compatible server and refuses bad proposals without training them."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rlfoundry.algos.ppo import PPOConfig
from rlfoundry.rewards.preferences import (
    RewardModel,
    Segments,
    fit_reward_model,
    preference_accuracy,
    teacher_labels,
)
from rlfoundry.rewards.spec import RewardConfig

SIG = "def reward(obs, action, next_obs, info):\n"
TINY = dict(env="CartPole-v1", num_envs=4, num_steps=16, total_steps=4 * 16 * 4,
            update_epochs=1, num_minibatches=1, hidden_sizes=(8,), lr=0.01)


@jax.jit
def _pairs(key):
    k1, k2 = jax.random.split(key)
    a, b = _segments(k1, 400), _segments(k2, 400)
    return a, b, teacher_labels(a, b)


def _segments(key, count, length=6):
    ko, ka = jax.random.split(key)
    obs = jax.random.uniform(ko, (count, length, 2))
    true = 3.0 * obs[..., 0] - obs[..., 1]
    action = jax.random.randint(ka, (count, length), 0, 2)
    return Segments(obs, action, true, jnp.ones((count, length)))


def test_bradley_terry_model_recovers_a_known_reward_ordering():
    k1, k3, k4 = jax.random.split(jax.random.PRNGKey(0), 3)
    a, b, labels = _pairs(k1)
    model = RewardModel(num_actions=2, hidden=(16,))
    params, losses = jax.jit(fit_reward_model, static_argnums=(0, 5))(
        model, a, b, labels, k3, 300)
    assert float(losses[-20:].mean()) < 0.5 * float(losses[:20].mean())
    ta, tb, tl = _pairs(k4)
    assert float(jax.jit(preference_accuracy, static_argnums=0)(model, params, ta, tb, tl)) > 0.9
    grid = jax.random.uniform(k4, (300, 2))
    learned = np.asarray(model.apply(params, grid, jnp.zeros(300, jnp.int32)))
    true = np.asarray(3.0 * grid[:, 0] - grid[:, 1])
    rank = lambda x: np.argsort(np.argsort(x))
    spearman = np.corrcoef(rank(learned), rank(true))[0, 1]
    assert spearman > 0.95, spearman


def test_learned_reward_model_plugs_into_the_env_stack(tmp_path):
    from rlfoundry.algos.base import make_env_stack
    from rlfoundry.errors import ConfigError
    from rlfoundry.rewards.preferences import save_reward_model

    model = RewardModel(num_actions=2, hidden=(4,))
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)), jnp.zeros((1,), jnp.int32))
    path = save_reward_model(tmp_path / "rm", model, params, "CartPole-v1", (4,))
    cfg = PPOConfig(**TINY, reward=RewardConfig(model=str(path)))
    cfg.validate()
    stack = make_env_stack(cfg)
    action = jnp.array([0, 1, 0, 1])

    @jax.jit
    def first_step(key):
        obs, state = stack.env.reset(key, stack.params)
        out = stack.env.step(jax.random.fold_in(key, 1), state, action, stack.params)
        return obs, out[2], out[5]["episode_return"]

    obs, reward, episode_return = first_step(jax.random.PRNGKey(1))
    np.testing.assert_allclose(reward, model.apply(params, obs, action), rtol=1e-5)
    np.testing.assert_allclose(episode_return, 1.0)  # the true reward is kept
    with pytest.raises(ConfigError, match="fitted on 'CartPole-v1'"):
        PPOConfig(env="Acrobot-v1", reward=RewardConfig(model=str(path))).validate()


class _ChatServer(BaseHTTPRequestHandler):
    replies: list[str] = []
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        content = type(self).replies[len(type(self).requests) - 1]
        out = json.dumps({"choices": [{"message": {"role": "assistant",
                                                   "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):  # keep the test output clean
        pass


def test_design_loop_with_a_local_openai_compatible_server():
    from rlfoundry.rewards.designer import HTTPDesigner, design_reward

    _ChatServer.requests = []
    _ChatServer.replies = [
        "Here you go:\n```python\nimport os\n" + SIG + "    return 1.0\n```",
        "Fixed:\n```python\n" + SIG + "    return info['reward'] - jnp.abs(next_obs[2])\n```",
    ]
    server = HTTPServer(("127.0.0.1", 0), _ChatServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v1/chat/completions"
        out = design_reward(PPOConfig(**TINY), HTTPDesigner(url, model="local"),
                            "balance the pole", rounds=2, seeds=1)
    finally:
        server.shutdown()
    first, second = out["attempts"]
    assert "import" in first["error"] and first["success"] is None
    assert second["error"] is None and np.isfinite(second["success"])
    assert out["best"]["round"] == 2
    prompt = _ChatServer.requests[1]["messages"][-1]["content"]
    assert "REFUSED" in prompt and "import" in prompt  # the refusal was fed back
    assert _ChatServer.requests[0]["model"] == "local"


def test_coefficient_designer_climbs_and_turns_back():
    from rlfoundry.rewards.designer import Attempt, CoefficientDesigner

    d = CoefficientDesigner(SIG + "    return info['reward'] + {c} * jnp.abs(obs[0])\n",
                            start=0.0, step=1.0)
    h = [Attempt(1, d.propose("t", []), success=10.0)]
    h.append(Attempt(2, d.propose("t", h), success=20.0))
    assert "1.0 *" in h[-1].source
    h.append(Attempt(3, d.propose("t", h), success=5.0))
    assert "2.0 *" in h[-1].source
    assert "0.5 *" in d.propose("t", h)  # worse: back to the best (1.0) minus half a step


def test_blend_search_lowers_a_misleading_weight():
    from rlfoundry.rewards.blend import BlendSearch

    helpful = SIG + "    return 0.5 - 5 * jnp.abs(next_obs[2])\n"
    misleading = SIG + "    return 2.0 * (action == 0)\n"
    cfg = PPOConfig(**{**TINY, "total_steps": 4 * 16 * 24, "update_epochs": 2},
                    reward=RewardConfig(aux=(helpful, misleading)))
    out = BlendSearch(cfg, population=4, generations=2, sigma=0.5, lr=0.3).run(
        jax.random.PRNGKey(0))
    w = np.asarray(out["mean_weights"])
    assert w.shape == (3, 2) and np.all(np.isfinite(out["fitness_mean"]))
    assert w[-1, 1] < w[0, 1]  # the misleading weight went down
