"""The sandbox: run untrusted, model-written programs against a problem's tests, and judge them safely.

``Executor`` is the entry point (``executor``); ``Limits`` the per-program limits; ``Verdict`` the result, whose
``status`` is one of ``STATUSES``; ``SandboxUnavailable`` is raised when a protection is missing on this machine.
``make_plan`` turns a problem's tests into the plan its programs are judged by (callers check tests early).
Importing this package is light (standard library only): processes start with the executor.

Layers, from the outside in: a zygote per worker in its own mount, network, IPC and UTS namespaces with a minimal
read-only root (``zygote``); per program, a child forked as pid 1 of a new pid namespace, as an unprivileged uid
of its own, with rlimits, no_new_privs, Landlock and a seccomp filter (``child``, ``linux``); a trusted parent that
judges plain data (``runs``, ``judge``, ``codec``) from a plan it made of the problem (``plan``).

Not covered: kernel exploits (a kernel bug escapes any namespace sandbox); timing side channels between programs;
reading the Python installation and system libraries (allowed on purpose). A problem's own test code is trusted
to be test code: it runs sandboxed too, in a separate process, but its pass/fail is believed.
The design, and what a program must not be able to do: docs/sandbox.md.
"""

from giftgen.sandbox.executor import Executor, check_workers
from giftgen.sandbox.packages import allowed_packages
from giftgen.sandbox.plan import make_plan
from giftgen.sandbox.process import SandboxUnavailable
from giftgen.sandbox.verdict import MIN_TIMEOUT, STATUSES, Limits, Verdict

__all__ = ["MIN_TIMEOUT", "STATUSES", "Executor", "Limits", "SandboxUnavailable", "Verdict", "allowed_packages",
           "check_workers", "make_plan"]
