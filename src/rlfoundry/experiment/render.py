"""Rendering a saved policy to an animated GIF.

One compiled ``lax.scan`` plays up to ``max_frames`` steps in a single environment and
records the innermost environment state of every step; frames are drawn afterwards on
the host. Drawing is ours (numpy + Pillow), since gymnax's classic-control visualiser
needs pygame and rebuilds a Gymnasium env per frame:

- an environment may define ``render_frame(state, params) -> uint8 [H, W, 3]`` (the hook
  for rlfoundry's own environments);
- CartPole, Pendulum, Acrobot and MountainCar have drawings here;
- any environment with image observations ``[H, W, C]`` (MinAtar, ...) is drawn as a
  colour-coded grid of its channels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from rlfoundry.errors import ConfigError
from rlfoundry.experiment.runfolder import RunFolder

W, H = 480, 320
BG = (255, 255, 255)


def innermost_state(state: Any) -> Any:
    """Peel wrapper states (each keeps the wrapped one in ``env_state``)."""
    while hasattr(state, "env_state"):
        state = state.env_state
    return state


def _canvas() -> tuple[Any, Any]:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (W, H), BG)
    return img, ImageDraw.Draw(img)


def _cartpole(s: Any, p: Any) -> np.ndarray:
    img, d = _canvas()
    limit = float(getattr(p, "x_threshold", 2.4))
    scale = W / (2 * limit * 1.2)
    ground = H * 0.7
    cx = W / 2 + float(s.x) * scale
    d.line([(0, ground), (W, ground)], fill=(0, 0, 0), width=1)
    d.rectangle([cx - 30, ground - 15, cx + 30, ground + 15], fill=(40, 40, 40))
    pole = 2 * float(getattr(p, "length", 0.5)) * scale
    th = float(s.theta)
    tip = (cx + pole * np.sin(th), ground - 15 - pole * np.cos(th))
    d.line([(cx, ground - 15), tip], fill=(202, 152, 101), width=10)
    d.ellipse([cx - 4, ground - 19, cx + 4, ground - 11], fill=(129, 132, 203))
    return np.asarray(img)


def _pendulum(s: Any, p: Any) -> np.ndarray:
    img, d = _canvas()
    c = (W / 2, H / 2)
    r = H * 0.38
    th = float(s.theta)  # 0 = upright
    tip = (c[0] + r * np.sin(th), c[1] - r * np.cos(th))
    d.line([c, tip], fill=(204, 77, 77), width=14)
    d.ellipse([c[0] - 6, c[1] - 6, c[0] + 6, c[1] + 6], fill=(0, 0, 0))
    return np.asarray(img)


def _acrobot(s: Any, p: Any) -> np.ndarray:
    img, d = _canvas()
    c = (W / 2, H / 2)
    r = H * 0.2
    a1, a2 = float(s.joint_angle1), float(s.joint_angle2)
    p1 = (c[0] + r * np.sin(a1), c[1] + r * np.cos(a1))
    p2 = (p1[0] + r * np.sin(a1 + a2), p1[1] + r * np.cos(a1 + a2))
    d.line([(0, c[1] - r), (W, c[1] - r)], fill=(0, 0, 0), width=1)  # goal height
    d.line([c, p1], fill=(0, 204, 204), width=8)
    d.line([p1, p2], fill=(0, 204, 204), width=8)
    for q in (c, p1):
        d.ellipse([q[0] - 5, q[1] - 5, q[0] + 5, q[1] + 5], fill=(204, 204, 0))
    return np.asarray(img)


def _mountain_car(s: Any, p: Any) -> np.ndarray:
    img, d = _canvas()
    lo, hi = float(getattr(p, "min_position", -1.2)), float(getattr(p, "max_position", 0.6))
    xs = np.linspace(lo, hi, 100)
    to_px = lambda x, y: ((x - lo) / (hi - lo) * W, H - (y * 0.8 + 0.1) * H)
    height = lambda x: np.sin(3 * x) * 0.45 + 0.55
    d.line([to_px(x, height(x)) for x in xs], fill=(0, 0, 0), width=2)
    gx = float(getattr(p, "goal_position", 0.5))
    g = to_px(gx, height(gx))
    d.line([g, (g[0], g[1] - 40)], fill=(0, 0, 0), width=2)
    d.polygon([(g[0], g[1] - 40), (g[0] + 20, g[1] - 34), (g[0], g[1] - 28)], fill=(204, 204, 0))
    x = float(s.position)
    cx, cy = to_px(x, height(x))
    d.ellipse([cx - 10, cy - 20, cx + 10, cy], fill=(60, 60, 60))
    return np.asarray(img)


DRAWINGS = {
    "CartPole-v1": _cartpole,
    "Pendulum-v1": _pendulum,
    "Acrobot-v1": _acrobot,
    "MountainCar-v0": _mountain_car,
    "MountainCarContinuous-v0": _mountain_car,
}


def channel_image(obs: np.ndarray, cell: int = 24) -> np.ndarray:
    """An [H, W, C] observation as RGB: each channel its own colour, black background."""
    obs = np.asarray(obs, dtype=np.float32)
    channels = obs.shape[-1]
    hues = np.linspace(0.0, 1.0, channels, endpoint=False)
    import colorsys

    palette = np.array([colorsys.hsv_to_rgb(h, 0.75, 1.0) for h in hues]) * 255
    on = obs > 0.5
    idx = np.where(on.any(-1), on.argmax(-1), -1)
    rgb = np.where(idx[..., None] >= 0, palette[np.maximum(idx, 0)], 0.0).astype(np.uint8)
    return np.kron(rgb, np.ones((cell, cell, 1), dtype=np.uint8))


def frame_drawer(base: Any, env_name: str, params: Any) -> Any:
    """A function ``state -> frame`` for ``base`` (the unwrapped env), or a ConfigError."""
    if hasattr(base, "render_frame"):
        return lambda s: np.asarray(base.render_frame(s, params), dtype=np.uint8)
    if env_name in DRAWINGS:
        draw = DRAWINGS[env_name]
        return lambda s: draw(s, params)
    shape = tuple(base.observation_space(params).shape)
    if len(shape) == 3:
        return None  # images: drawn from observations, batched (see render)
    raise ConfigError(
        f"rendering {env_name} is not supported; supported: {', '.join(DRAWINGS)}, image-"
        "observation envs (MinAtar) and envs with a render_frame(state, params) method."
    )


def record(config: Any, algo: Any, state: Any, key: jax.Array, steps: int,
           deterministic: bool) -> tuple[Any, np.ndarray, np.ndarray]:
    """Play ``steps`` steps in one env; returns the innermost states [steps + 1] (reset
    state first), whether an episode ended at each step, and the returns of ended ones."""
    from rlfoundry.algos.base import forget_where, make_env_stack
    from rlfoundry.experiment.evaluate import freeze_observation_stats

    stack = make_env_stack(config, num_envs=1, update_stats=False)

    def run(state: Any, key: jax.Array) -> tuple[Any, Any, jax.Array, jax.Array]:
        reset_key, key = jax.random.split(key)
        obs, env_state = stack.env.reset(reset_key, stack.params)
        env_state, obs = freeze_observation_stats(stack, env_state, obs, state, reset_key)

        policy = algo.make_policy(config, state, deterministic)
        initial_memory, act = policy

        def step(c: tuple, k: jax.Array) -> tuple:
            env_state, obs, memory = c
            act_key, step_key = jax.random.split(k)
            memory, action = act(memory, obs, act_key)
            obs, env_state, _, _, _, info = stack.env.step(step_key, env_state, action,
                                                           stack.params)
            memory = forget_where(policy, memory, info["episode_done"])  # next episode
            out = (innermost_state(env_state), info["episode_done"][0],
                   info["episode_return"][0])
            return (env_state, obs, memory), out

        _, (states, done, ret) = jax.lax.scan(step, (env_state, obs, initial_memory(1)),
                                              jax.random.split(key, steps))
        return innermost_state(env_state), states, done, ret

    first, states, done, ret = jax.jit(run)(state, key)
    states = jax.tree.map(lambda a, b: jnp.concatenate([a, b[:, 0]]), first,
                          states)  # [steps + 1, ...] (drop the env axis)
    return states, np.asarray(done), np.asarray(ret)


def render(folder: RunFolder, out: str | Path, episodes: int = 1, seed_index: int = 0,
           seed: int = 0, deterministic: bool = True, max_frames: int = 500, fps: int = 30,
           checkpoint: int | None = None) -> dict[str, Any]:
    """Write a GIF of ``episodes`` episodes (at most ``max_frames`` frames)."""
    import imageio.v2 as imageio

    from rlfoundry.envs import make
    from rlfoundry.experiment.evaluate import load_trained, select_seeds

    out = Path(out)
    if out.suffix.lower() != ".gif":
        raise ConfigError(f"--out {out}: only .gif is supported here (no video encoder is "
                          "installed); use a .gif name.")
    trained = load_trained(folder, checkpoint)
    config = trained.spec.config
    env_name = getattr(config, "env", "?")
    base, params = make(env_name)
    draw = frame_drawer(base, env_name, params)  # fail before playing
    state, _ = select_seeds(trained, seed_index)
    one = jax.tree.map(lambda x: x[0], state)
    states, done, ret = record(config, trained.algo, one, jax.random.PRNGKey(seed), max_frames,
                               deterministic)
    ends = np.flatnonzero(done)
    n = int(ends[episodes - 1]) + 1 if len(ends) >= episodes else max_frames
    returns = [float(r) for r in ret[ends[:episodes]]]
    seq = jax.tree.map(lambda x: x[:n + 1] if len(ends) < episodes else x[:n], states)
    host = jax.device_get(seq)
    count = int(jax.tree.leaves(host)[0].shape[0])
    if draw is None:
        images = jax.jit(jax.vmap(lambda s: base.get_obs(s, params)))(seq)
        frames = [channel_image(o) for o in np.asarray(images)]
    else:
        frames = [draw(jax.tree.map(lambda x, i=i: x[i], host)) for i in range(count)]
    out.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(out, frames, duration=1000.0 / fps, loop=0)
    return {"path": str(out), "frames": len(frames), "episodes": len(returns),
            "returns": returns or [float("nan")]}
