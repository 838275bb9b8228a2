"""What the fake model APIs answer: one script for every fake, by the
conversation's last user turn.

  - a tool's output                → a reply quoting the new id, or its error
                                     line, or its first line
  - "create a project NAME"        → run: orchestrator project create NAME --json
  - "start a demo job"             → run: orchestrator jobs demo demo.sleep ... --json
  - "run: COMMAND" (a line)        → run COMMAND
  - the platform saying the tests failed after a change, in a conversation
    whose first turn has a line "fix: COMMAND" → run COMMAND
  - "job ID ... succeeded|failed"  → "Your job ID STATE."
  - anything else                  → "You said: TEXT"

answer(...) returns (text, command): command is None for a plain reply.
"""
import re


def after_tool(output):
    # Codex wraps a command's output in a header ending with "Output:".
    if "\nOutput:\n" in output:
        output = output.split("\nOutput:\n", 1)[1]
    lines = output.strip().splitlines() or ["(no output)"]
    errors = [l for l in lines if "error:" in l]
    m = re.search(r'"id":\s*"((?:prj|job)_[a-z0-9]+)"', output)
    return "Done: %s" % (m.group(1) if m else errors[0] if errors else lines[0]), None


# How the engineering component's follow-up turn starts
# (services/engineering/domain/prompts.h, kTestsFailedHeader).
TESTS_FAILED = "The project's tests failed after your change"


def answer(said, first=""):
    """`first`: the conversation's first user turn (the task)."""
    if TESTS_FAILED in said:
        m = re.search(r"^\s*fix: (.+)$", first, re.M)
        if m:
            return "Fixing it.", m.group(1).strip()
    lowered = said.lower()
    m = re.search(r"create (?:a )?project (?:named |called )?([a-z][a-z0-9-]*)", lowered)
    if m:
        return "Running it.", "orchestrator project create %s --json" % m.group(1)
    if re.search(r"(?:start|run) a demo job", lowered):
        return "Running it.", ("orchestrator jobs demo demo.sleep "
                               "--params '{\"seconds\":1,\"steps\":2}' --json")
    m = re.search(r"^\s*run: (.+)$", said, re.M)
    if m:
        return "Running it.", m.group(1).strip()
    m = re.search(r"job (job_[a-z0-9]+)[^.\n]* (succeeded|failed|was cancelled)", lowered)
    if m:
        return "Your job %s %s." % (m.group(1), m.group(2)), None
    return "You said: %s" % said.strip(), None
