"""A stand-in for `LLMResponsesClient` inside the process, for tests of what the services do with the
upstream's answers (budgets, chunks, failures) rather than of the HTTP. The stand-in over real HTTP is
in test_services.py; the client's own behaviour in test_clients.py.

    upstream = FakeUpstream(failures={2: UpstreamReplyLost("lost", lost_range=(0, 100))})
    monkeypatch.setattr(clients, "LLMResponsesClient", upstream)
"""

import threading
import uuid

from tasks.upstream.outcomes import StatusClass, TaskOutcome
from tasks.upstream.providers import queued_charge_per_task

CHARGE = queued_charge_per_task()  # what the fake charges per accepted task: the queued estimate


class FakeUpstream:
    """Accepts every task (20100) at CHARGE. `failures` maps a task_post call's number (from 1) to the
    exception that call raises instead. Safe to call from several threads."""

    def __init__(self, failures: dict[int, Exception] | None = None):
        self.failures = failures or {}
        self.calls: list[list[dict]] = []  # the bodies of each task_post call, in order
        self.answered: dict[str, dict] = {}  # upstream id → the body it was given
        self.lock = threading.Lock()

    @property
    def posted(self) -> list[dict]:
        return [body for call in self.calls for body in call]

    def for_credential(self, credential, **kwargs):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def close(self):
        pass

    def task_post(self, provider, bodies):
        with self.lock:
            self.calls.append(bodies)
            number = len(self.calls)
        if number in self.failures:
            raise self.failures[number]
        outcomes = [self._accept(body) for body in bodies]
        with self.lock:
            self.answered.update({outcome.id: body for outcome, body in zip(outcomes, bodies, strict=True)})
        return outcomes

    @staticmethod
    def _accept(body: dict) -> TaskOutcome:
        return TaskOutcome(
            id=str(uuid.uuid4()),
            status_code=20100,
            status_message="Task Created.",
            status_class=StatusClass.CREATED,
            cost=CHARGE,
            data={},
            result=None,
            raw={},
        )
