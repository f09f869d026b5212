"""A client generated from the OpenAPI document creates, starts and reads a task, unedited.

Usage: python generated_client.py <base URL> <token> <generated package directory>

The package is what `openapi-python-client generate --meta none` writes from
`<base URL>/api/v1/invite/openapi.json` (see `.ci/contract.sh`); nothing in it is edited. The
task runs on the sandbox platform; the script waits until it is finished and checks its
report.
"""

import sys
import time
import uuid

base_url, token, package_dir = sys.argv[1:4]
sys.path.insert(0, package_dir)

from invite_service_api_client import AuthenticatedClient  # noqa: E402
from invite_service_api_client.api.tasks import (  # noqa: E402
    create_task,
    get_task,
    start_task,
    task_status,
)
from invite_service_api_client.models import (  # noqa: E402
    CreatedTaskView,
    InviteTaskBody,
    InviteTaskBodyAction,
    Platform,
    Problem,
    StatusView,
    TaskStatus,
    TaskView,
)


def expect(value, kind, what):
    if not isinstance(value, kind):
        sys.exit(f"{what}: expected {kind.__name__}, got {value!r}")
    return value


client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)
with client as c:
    body = InviteTaskBody(
        name="Generated client",
        platform=Platform.SANDBOX,
        action=InviteTaskBodyAction.INVITE,
        group="@generated_client_group",
        targets=["@alice_example", "@bob_example", "+447700900123"],
    )
    created = expect(
        create_task.sync(client=c, body=body, idempotency_key=uuid.uuid4().hex),
        CreatedTaskView,
        "create",
    )
    task_id = created.task.id
    assert created.inserted == 3, created
    assert created.task.status == TaskStatus.PENDING, created.task.status
    print(f"created task {task_id}: {created.inserted} targets, status {created.task.status.value}")

    started = expect(start_task.sync(id=task_id, client=c), TaskView, "start")
    print(f"started task {task_id}: status {started.status.value}")

    deadline = time.monotonic() + 60
    while True:
        task = expect(get_task.sync(id=task_id, client=c), TaskView, "get")
        if task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
            break
        if time.monotonic() > deadline:
            sys.exit(f"task {task_id} still {task.status.value} after 60 s")
        time.sleep(0.5)
    status = expect(task_status.sync(id=task_id, client=c), StatusView, "status")
    print(
        f"read task {task_id}: status {task.status.value}, "
        f"{status.processed}/{status.total} targets processed"
    )
    assert task.status == TaskStatus.COMPLETED, task
    assert status.total == 3 and status.processed == 3, status

    missing = get_task.sync(id=task_id + 1_000_000, client=c)
    expect(missing, Problem, "get of a missing task")
    assert missing.status == 404, missing
print("generated client: create, start and read OK")
