"""The CPU priority of the batch run beside the load: `nice`, the session's autogroup, and an
idle CPU cgroup where one can be made."""

from __future__ import annotations

import contextlib
import os
import shlex
from pathlib import Path

NICE = ["nice", "-n", "19"]
# Linux groups a session's processes (an "autogroup", on by default) and shares the CPU between
# groups before it looks at any process's nice value: a niced batch in a session of its own
# (here, as under setsid, ssh or a terminal of its own) still takes a whole group's share, as
# much as the server's. Lowering the autogroup too (nice 19) shrinks its share, but it still
# keeps each time slice it starts, and the server's threads, which wake for every request, wait
# behind it. A cgroup with `cpu.idle` (systemd's `CPUWeight=idle`) is preempted at once.
AUTOGROUP_19 = [
    "sh",
    "-c",
    '[ -w /proc/self/autogroup ] && echo 19 > /proc/self/autogroup; exec nice -n 19 "$@"',
    "sh",
]
CGROUP_ROOTS = [Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")]  # cgroup v1, then v2


def idle_cgroup_create(stack: contextlib.ExitStack) -> Path | None:
    """A CPU cgroup with `cpu.idle` set for the batch (removed when the stack closes), or None
    where none can be made (no permission, a kernel before 5.15, the cpu controller off)."""
    for root in CGROUP_ROOTS:
        if not (root / "cgroup.procs").exists():
            continue
        if root.name != "cpu" and "cpu" not in (root / "cgroup.subtree_control").read_text():
            continue  # cgroup v2 without the cpu controller for its children
        group = root / f"recsite-bench-batch-{os.getpid()}"
        try:
            group.mkdir(exist_ok=True)
            stack.callback(cgroup_remove, group)
            (group / "cpu.idle").write_text("1")
            return group
        except OSError:
            continue
    return None


def cgroup_remove(group: Path) -> None:
    with contextlib.suppress(OSError):  # still busy: the kernel keeps it until it is empty
        group.rmdir()


def low_priority(cgroup: Path | None) -> list[str]:
    """The command prefix that runs the batch at the lowest CPU priority available."""
    if cgroup is None:
        return AUTOGROUP_19
    procs = shlex.quote(str(cgroup / "cgroup.procs"))
    return ["sh", "-c", f'echo $$ > {procs} && exec nice -n 19 "$@"', "sh"]
