"""The reward-design loop of LLM reward-design papers (e.g. Eureka, Ma et al. 2023):
propose reward code → validate → short training → evaluate on the task's own success
metric → feed the statistics back → propose again.

A designer is anything with ``propose(task, history) -> source``. Two ship here:

* :class:`CoefficientDesigner`, deterministic and offline (for tests and as a baseline):
  a reward template with one coefficient ``{c}``, hill-climbed on the feedback (keep going
  while the success metric improves, else turn back with half the step);
* :class:`HTTPDesigner`, a client of an OpenAI-compatible ``/chat/completions`` endpoint
  (off by default: it needs an explicit URL). The prompt holds the task, the reward
  contract and every earlier attempt with its error or statistics; the reply's first
  fenced code block is the proposal. Only the standard library (urllib) is used.

Whatever a designer returns goes through the same validator as user code, so a model can
never run anything but allow-listed ``jnp`` arithmetic.
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.error
import urllib.request
from typing import Any, Protocol

import numpy as np

from rlfoundry.errors import ConfigError, RLFoundryError
from rlfoundry.rewards.code import INFO_KEYS


@dataclasses.dataclass
class Attempt:
    """One round: the proposed source and either its refusal or its training statistics."""

    round: int
    source: str
    error: str | None = None
    success: float | None = None  # the task's own metric: final primary return (mean)
    per_seed: list[float] = dataclasses.field(default_factory=list)

    def feedback(self) -> str:
        if self.error:
            return f"round {self.round}: REFUSED: {self.error}"
        return (f"round {self.round}: trained; task return (success metric) "
                f"{self.success:.2f}, per seed {[round(x, 2) for x in self.per_seed]}")


class Designer(Protocol):
    def propose(self, task: str, history: list[Attempt]) -> str: ...


CONTRACT = (
    "Write a Python function `def reward(obs, action, next_obs, info):` returning one "
    "number. Allowed: arithmetic, comparisons, subscripts of obs/next_obs with integer "
    "literals, jnp functions (abs, sqrt, exp, log, tanh, clip, where, minimum, maximum, sum, "
    f"mean, ...), info[key] for key in {list(INFO_KEYS)} (info['reward'] is the task's own "
    "reward). Not allowed: imports, loops, if/and/or (use jnp.where), attributes, other "
    "calls. Reply with one ```python fenced block."
)


@dataclasses.dataclass
class CoefficientDesigner:
    """Hill-climbs the coefficient ``{c}`` of ``template`` on the success metric."""

    template: str
    start: float = 0.0
    step: float = 1.0

    def propose(self, task: str, history: list[Attempt]) -> str:
        tried = [(a, float(self._coef(a))) for a in history if a.error is None]
        if not tried:
            c = self.start
        elif len(tried) == 1:
            c = tried[0][1] + self.step
        else:
            (prev, c_prev), (last, c_last) = tried[-2], tried[-1]
            delta = c_last - c_prev
            better = (last.success or -np.inf) >= (prev.success or -np.inf)
            best = max(tried, key=lambda t: t[0].success or -np.inf)[1]
            c = c_last + delta if better else best - delta / 2
        return self.template.replace("{c}", repr(round(c, 6)))

    def _coef(self, attempt: Attempt) -> float:
        head, _, tail = self.template.partition("{c}")
        middle = attempt.source[len(head):len(attempt.source) - len(tail)]
        return float(middle)


@dataclasses.dataclass
class HTTPDesigner:
    """Asks an OpenAI-compatible chat endpoint (``url`` ending in /chat/completions)."""

    url: str
    model: str = "gpt-4o-mini"
    api_key: str | None = None
    timeout: float = 60.0
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"designer url must start with http:// or https://, got "
                              f"{self.url!r}.")

    def messages(self, task: str, history: list[Attempt]) -> list[dict[str, str]]:
        lines = [f"Task: {task}", CONTRACT]
        for a in history:
            lines.append(f"Attempt {a.round}:\n```python\n{a.source}\n```\n{a.feedback()}")
        if history:
            lines.append("Propose an improved reward.")
        return [{"role": "system", "content": "You design reward functions for RL agents."},
                {"role": "user", "content": "\n\n".join(lines)}]

    def propose(self, task: str, history: list[Attempt]) -> str:
        body = json.dumps({"model": self.model, "temperature": self.temperature,
                           "messages": self.messages(task, history)}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                reply = json.loads(resp.read().decode())
            content = reply["choices"][0]["message"]["content"]
        except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError,
                TypeError) as err:
            raise ConfigError(f"designer endpoint {self.url} failed: {type(err).__name__}: "
                              f"{str(err)[:200]}.") from None
        return extract_code(content)


def extract_code(text: str) -> str:
    """The first fenced code block of a reply (the whole reply if there is none)."""
    match = re.search(r"```(?:python|py)?\s*\n(.*?)```", text, re.S)
    return (match.group(1) if match else text).strip() + "\n"


def design_reward(config: Any, designer: Designer, task: str, rounds: int = 3,
                  seeds: int = 2, log: Any = None) -> dict[str, Any]:
    """Run the loop for ``rounds`` proposals; each valid one trains ``config`` with its
    reward for ``seeds`` seeds and is scored by the final primary (environment) return.
    Returns every attempt and the best one."""
    from rlfoundry.engine import Trainer
    from rlfoundry.rewards.spec import RewardConfig

    history: list[Attempt] = []
    for r in range(1, rounds + 1):
        source = designer.propose(task, history)
        attempt = Attempt(r, source)
        try:
            cfg = config.replace(reward=RewardConfig(code=source))
            cfg.validate()
        except RLFoundryError as err:
            attempt.error = str(err)
        else:
            trainer = Trainer(cfg, seeds=seeds, chunk_updates=10_000)
            _, metrics = trainer.run()
            final = _final_return(metrics)
            attempt.per_seed = [float(x) for x in final]
            attempt.success = float(np.mean(final))
        history.append(attempt)
        if log is not None:
            log(attempt.feedback())
    scored = [a for a in history if a.success is not None]
    best = max(scored, key=lambda a: a.success) if scored else None
    return {"attempts": [dataclasses.asdict(a) for a in history],
            "best": dataclasses.asdict(best) if best else None}


def _final_return(metrics: dict[str, np.ndarray], fraction: float = 0.2) -> np.ndarray:
    r, n = np.asarray(metrics["episode_return"]), np.asarray(metrics["episodes"])
    last = max(int(r.shape[-1] * fraction), 1)
    return (r[:, -last:] * n[:, -last:]).sum(-1) / np.maximum(n[:, -last:].sum(-1), 1.0)
