# Leave a process behind (its own session, so a process-group kill misses it) that edits the
# workspace after the experiment is over.
import subprocess

workspace = os.path.abspath(os.path.join(os.environ["AUTOLAB_RUN_DIR"], "..", "..", ".."))
code = (
    "import sys, time; time.sleep(3); "
    "open(sys.argv[1] + '/survivor-was-here', 'w').write('red team')"
)
subprocess.Popen(
    [sys.executable, "-c", code, workspace, "red-team-survivor"], start_new_session=True
)
raise SystemExit("left a survivor behind")
