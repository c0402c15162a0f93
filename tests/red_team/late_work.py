# --- finish ---
# Keep training after the clock said stop.
deadline = time.time() + 30
while time.time() < deadline:
    x, y = run.get_batch(32, SEQ_LEN)
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
