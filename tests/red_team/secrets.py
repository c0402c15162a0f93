# Read the runner's secrets from the environment.
leaked = [k for k in os.environ if "SECRET" in k or "API_KEY" in k or "TOKEN" in k]
if not leaked:
    raise SystemExit("blocked: no secrets in the environment")
raise SystemExit(f"read {', '.join(leaked)}")
