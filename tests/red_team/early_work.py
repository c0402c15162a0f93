# Train before the first run.get_batch, where the harness's clock has not started yet.
import numpy as np

train = os.path.join(os.environ["AUTOLAB_DATA_DIR"], "train.bin")
tokens = np.memmap(train, dtype=np.uint16, mode="r")
deadline = time.time() + 30
while time.time() < deadline:
    starts = np.random.randint(0, len(tokens) - SEQ_LEN - 1, 32)
    batch = torch.from_numpy(np.stack([tokens[s : s + SEQ_LEN + 1] for s in starts]).astype(np.int64))
    loss = F.cross_entropy(model(batch[:, :-1]).flatten(0, 1), batch[:, 1:].flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
