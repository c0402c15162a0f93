# Kill the processes above this one: the zygote that forked it and whatever runs that.
import signal

parent = os.getppid()
with open(f"/proc/{parent}/stat") as f:
    grandparent = int(f.read().rsplit(")", 1)[1].split()[1])
for pid in (grandparent, parent):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
time.sleep(2)
raise SystemExit("blocked: still here after killing the runner")
