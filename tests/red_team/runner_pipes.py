# Open the zygote's pipes and memory through /proc: forge requests, read its state.
parent = os.getppid()
opened = []
for name in ("fd/0", "fd/1", "mem", "environ"):
    try:
        with open(f"/proc/{parent}/{name}", "rb" if name != "fd/0" else "wb"):
            opened.append(name)
    except OSError:
        pass
if not opened:
    raise SystemExit("blocked: the runner's pipes and memory are out of reach")
raise SystemExit(f"opened the runner's {', '.join(opened)}")
