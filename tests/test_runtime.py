import os
import platform
import subprocess
import sys

import pytest

CHECK = "from graphrec.runtime import keep_freed_memory as k; print(k(), k())"


def run(env_value):
    env = {k: v for k, v in os.environ.items() if k != "GRAPHREC_KEEP_FREED_MEMORY"}
    if env_value is not None:
        env["GRAPHREC_KEEP_FREED_MEMORY"] = env_value
    return subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, check=True).stdout.split()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_keep_freed_memory_on_glibc_and_its_opt_out():
    assert run(None) == ["True", "True"]  # a second call answers the same, without calling mallopt again
    assert run("0") == ["False", "False"]
