"""Whether a process still lives: for files a worker leaves behind (readiness, claimed spools)."""
from __future__ import annotations

import os


def alive(pid: int) -> bool:
    """True while process ``pid`` exists (a process of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["alive"]
