"""A person is a researcher too: every `autolab train` recorded as an experiment of kind
`manual`, its train.py preserved, judged by the research loop's own policy (issue 14)."""
