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

And, as a Product-Owner driving the chain (what the scripted PO does, here
decided by "the model"), one command per request:
  - "build a python service called NAME that answers TEXT"
                                   → project create, then (its output) scaffold run
  - the platform's news of the scaffold job → engineering trigger (the
    template's greeting replaced by TEXT, as scripted steps)
  - of the engineering job         → deploy trigger
  - of the deploy job              → "NAME is live at URL and answers "TEXT"."

answer(...) returns (text, command): command is None for a plain reply.
"""
import json
import re
import shlex


BUILD = re.compile(r"build an? python (?:service|app) (?:called|named) ([a-z][a-z0-9-]{0,62}) "
                   r"that answers \"?([^\"\n]{1,200}?)\"?\.?$", re.I | re.M)
NEWS = re.compile(r"^Job (job_[a-z0-9]+) that you started succeeded\. It was an? ([a-z.]+) job "
                  r"of project (prj_[a-z0-9]+)(?:: ([^\n]*))?", re.M)


def chain_request(turns):
    """The latest build request among the conversation's user turns."""
    for said in reversed(turns):
        m = BUILD.search(said)
        if m:
            return m.group(1), m.group(2).strip()
    return None


def engineering_task(name, text):
    steps = {"steps": [
        {"replace": "repo/app.py", "old": 'GREETING = "Hello from %s!"' % name,
         "new": 'GREETING = "%s"' % text},
        {"say": 'The service now answers "%s".' % text}]}
    return ('Make %s answer "%s" (its greeting).\n```orchestrator-steps\n%s\n```\n'
            % (name, text, json.dumps(steps)))


def chain_step(said, turns):
    """The PO's next command for the chain, or None when `said` is not one
    of its steps. `turns`: the conversation's user turns, oldest first."""
    m = BUILD.search(said)
    if m:
        return "Creating it.", "orchestrator project create %s --json" % m.group(1).lower()
    news = NEWS.search(said)
    request = chain_request(turns)
    if not news or not request:
        return None
    job, kind, project, made = news.groups()
    name, text = request
    if kind == "scaffold":
        return ("Scaffolded %s. A coding agent makes it answer \"%s\"." % (name, text),
                "orchestrator engineering trigger %s %s --agent scripted --json"
                % (project, shlex.quote(engineering_task(name, text))))
    if kind == "engineering":
        return "The change passed its tests. Deploying it.", (
            "orchestrator deploy trigger %s --json" % project)
    if kind == "deploy":
        url = re.search(r"url (\S+?)(?:;|$)", made or "")
        return ('%s is live at %s and answers "%s".' % (name, url.group(1) if url else "?", text),
                None)
    return None


def chain_after_tool(output, said):
    """After a chain command's output: the next command of the same turn."""
    m = BUILD.search(said)
    project = re.search(r'"id":\s*"(prj_[a-z0-9]+)"', output)
    if m and project and '"project"' in output:
        return "Scaffolding it.", (
            "orchestrator scaffold run %s --template python-http --answer service_title=%s --json"
            % (project.group(1), m.group(1).lower()))
    return None


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
