# --- finish ---
# Hand over a program whose graph calls an operator of our own that runs any Python we like
# (here: it would read the sealed split) when the evaluator runs it.
@torch.library.custom_op("red_team::peek", mutates_args=())
def peek(logits: torch.Tensor) -> torch.Tensor:
    for path in ("/etc/hostname",):
        open(path).read()
    return logits.clone()


@peek.register_fake
def _(logits):
    return torch.empty_like(logits)


class Peeking(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, idx):
        return torch.ops.red_team.peek(self.inner(idx))


model = Peeking(model)
