#!/usr/bin/env python3
"""A fake of GitHub: the REST API calls the orchestrator makes
(https://docs.github.com/rest, version 2022-11-28) and git over HTTPS,
served for real by `git http-backend` from bare repositories in a
temporary directory (removed at exit, SIGTERM included).

REST, with `Authorization: Bearer TOKEN` (or `token TOKEN`) and a
User-Agent, as GitHub requires (401 {"message": "Bad credentials"} or
"Requires authentication"; 403 without a User-Agent):
  GET  /user                      the token's user (--user)
  GET  /repos/{owner}/{repo}      a repository, 404 {"message": "Not Found"}
  POST /user/repos                {"name", "description"?, "private"?, "auto_init"?}
  POST /orgs/{org}/repos          the same in an organisation (--org); 404
                                  for one the user is not a member of
  GET  /orgs/{org}
  POST /repos/{owner}/{repo}/pulls        {"title", "head", "base", "body"?, "draft"?}
  GET  /repos/{owner}/{repo}/pulls        ?state=open|closed|all&head=owner:branch&base=
  GET  /repos/{owner}/{repo}/pulls/{number}
Opening a pull request answers 201 and the pull request (number, state,
title, body, html_url {base}/{owner}/{repo}/pull/{number}, head and base
{label, ref, sha}, ...); GitHub's 422 "Validation Failed" when a field is
missing ({"resource": "PullRequest", "code": "missing_field", "field":
...}), when head or base is no branch of the repository ({"field": "head",
"code": "invalid"}), when head has no commits base lacks (head == base
included: {"code": "custom", "message": "No commits between BASE and
HEAD"}) and when one from head into base is open already ({"code":
"custom", "message": "A pull request already exists for OWNER:HEAD."}).
Creating a repository answers 201 and the repository; a name already taken (GitHub's
names are case-insensitive) answers 422 {"message": "Repository creation
failed.", "errors": [{"resource": "Repository", "code": "custom", "field":
"name", "message": "name already exists on this account"}]}; characters
GitHub does not allow in a name become '-', as GitHub does. auto_init is
ignored (repositories start empty). Repositories have id, node_id, name,
full_name, private, visibility, owner{login, id, type}, html_url,
description, url, clone_url, default_branch ("main") and times.

Git: /{owner}/{repo}.git/... (info/refs, git-upload-pack,
git-receive-pack), HTTP Basic with the token as the password (any user
name, e.g. x-access-token); 401 with WWW-Authenticate: Basic
realm="GitHub" otherwise, 404 "Repository not found." for none.
`clone_url` is http://127.0.0.1:PORT/{owner}/{repo}.git.

The test drives it under /_fake/ (not GitHub's):
  GET  /_fake/state   {"created": [full names made through the API, in order],
                       "repos": [every repository's full name],
                       "pulls": [{"repo", "number", "head", "base", "title", "body"}]}
  POST /_fake/repos   {"full_name": "owner/name", "reject_push"?: "message",
                       "private"?: false (anyone may then fetch it, as on GitHub)}
        makes the repository as someone else would (not in "created") if
        missing; with reject_push, a pre-receive hook refuses every push
        to it with that message. Answers the repository.
Each request is appended, as JSON {"method", "path", "body"}, to --log
(git requests without their body).

  github_api.py --port PORT [--log FILE] [--token TOKEN] [--user LOGIN]
                [--org ORG]... [--existing OWNER/NAME]...
                [--reject-push OWNER/NAME]...          (port 0: pick one, print it)
"""
import atexit
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_http import LOCK, JsonHandler, serve  # noqa: E402

API_VERSIONS = {"2022-11-28"}
DOCS = "https://docs.github.com/rest"
DEFAULT_REJECT = "error: GH006: Protected branch update failed for refs/heads/main."
NAME_OK = re.compile(r"[A-Za-z0-9._-]+")
MAX_BODY = 64 << 20


class Fake:
    """The fake's repositories (all under LOCK)."""

    def __init__(self, options):
        self.options = options
        self.root = tempfile.mkdtemp(prefix="fake_github.")
        atexit.register(shutil.rmtree, self.root, True)
        self.repos = {}    # lowercase full name -> repository JSON (without URLs)
        self.created = []  # full names made through the API
        self.pulls = []    # pull requests, in the order opened
        self.next_id = 1000
        self.owners = {options.user.lower(): {"login": options.user, "id": 1, "type": "User"}}
        for i, org in enumerate(options.org):
            self.owners[org.lower()] = {"login": org, "id": 100 + i, "type": "Organization"}
        for full_name in options.existing:
            self.make(full_name)
        for full_name in options.reject_push:
            self.reject_push(self.make(full_name)["full_name"], DEFAULT_REJECT)

    def path(self, full_name):
        return os.path.join(self.root, full_name.lower() + ".git")

    def make(self, full_name, description=None, private=True):
        """The repository full_name ("owner/name"), made if missing."""
        if full_name.lower() in self.repos:
            return self.repos[full_name.lower()]
        owner_login, name = full_name.split("/", 1)
        owner = self.owners.setdefault(owner_login.lower(), {
            "login": owner_login, "id": 500 + len(self.owners), "type": "User"})
        self.next_id += 1
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        repo = {"id": self.next_id, "node_id": "R_fake%d" % self.next_id, "name": name,
                "full_name": "%s/%s" % (owner["login"], name), "private": private,
                "visibility": "private" if private else "public",
                "owner": {"login": owner["login"], "id": owner["id"], "type": owner["type"]},
                "description": description, "fork": False, "default_branch": "main",
                "created_at": now, "updated_at": now, "pushed_at": None}
        os.makedirs(os.path.dirname(self.path(full_name)), exist_ok=True)
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main",
                        self.path(full_name)], check=True, env=git_env(self.root))
        self.repos[full_name.lower()] = repo
        return repo

    def branch_sha(self, full_name, branch):
        """The commit `branch` of the repository points at, or None."""
        done = subprocess.run(["git", "rev-parse", "--verify", "-q",
                               "refs/heads/%s^{commit}" % branch],
                              cwd=self.path(full_name), capture_output=True,
                              env=git_env(self.root))
        return done.stdout.decode().strip() if done.returncode == 0 else None

    def has_commits_beyond(self, full_name, head_sha, base_sha):
        """Whether head_sha has a commit base_sha lacks."""
        done = subprocess.run(["git", "merge-base", "--is-ancestor", head_sha, base_sha],
                              cwd=self.path(full_name), capture_output=True,
                              env=git_env(self.root))
        return done.returncode != 0

    def reject_push(self, full_name, message):
        hooks = os.path.join(self.path(full_name), "hooks")
        with open(os.path.join(hooks, "reject-message"), "w") as f:
            f.write(message + "\n")
        hook = os.path.join(hooks, "pre-receive")
        with open(hook, "w") as f:
            f.write('#!/bin/sh\ncat "$(dirname "$0")/reject-message" >&2\nexit 1\n')
        os.chmod(hook, 0o755)


FAKE = None


def fake(options):
    global FAKE
    with LOCK:
        if FAKE is None:
            FAKE = Fake(options)
        return FAKE


def git_env(root):
    """An environment for git that holds nothing of this machine's config."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": root,
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def not_found():
    return 404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}


class Handler(JsonHandler):
    def do_GET(self):
        self._route()

    def do_POST(self):
        self._route()

    def do_PATCH(self):
        self._route()

    def do_DELETE(self):
        self._route()

    def base_url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def _log_request(self, body):
        if JsonHandler.log_file:
            with LOCK, open(JsonHandler.log_file, "a") as f:
                f.write(json.dumps({"method": self.command, "path": self.path, "body": body})
                        + "\n")

    def _read_request_body(self):
        """The body as sent (Content-Length or chunked), or None after 413."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts, size = [], 0
            while True:
                line = self.rfile.readline(1024)
                length = int(line.split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                size += length
                if size > MAX_BODY:
                    self._json(413, {"message": "Payload too large"})
                    self.close_connection = True
                    return None
                parts.append(self.rfile.read(length))
                self.rfile.readline(1024)
        length = int(self.headers.get("content-length") or 0)
        if length > MAX_BODY:
            self._json(413, {"message": "Payload too large"})
            self.close_connection = True
            return None
        return self.rfile.read(length)

    def _route(self):
        body = self._read_request_body()
        if body is None:
            return
        url = urlsplit(self.path)
        path = url.path
        f = fake(self.options)
        if path.startswith("/_fake/"):
            return self._control(f, path[len("/_fake/"):], body)
        git = re.fullmatch(r"/([^/]+)/([^/]+?)(\.git)?(/(?:info/refs|git-upload-pack|"
                           r"git-receive-pack|HEAD|objects/.*))", path)
        if git:
            self._log_request(None)
            return self._git(f, git.group(1), git.group(2), git.group(4), url.query, body)
        try:
            text = body.decode() if body else ""
            request = json.loads(text) if text else {}
        except ValueError:
            request = None
        self._log_request(request if request is not None else body.decode("utf-8", "replace"))
        code, answer = self._rest(f, path, request, url.query)
        self._json(code, answer)

    # --- the REST API ---

    def _rest(self, f, path, request, query=""):
        if not self.headers.get("user-agent"):
            return 403, {"message": "Request forbidden by administrative rules. Please make "
                                    "sure your request has a User-Agent header "
                                    "(https://docs.github.com/en/rest/overview/resources-in-the"
                                    "-rest-api#user-agent-required). Check "
                                    "https://developer.github.com for other possible causes."}
        version = self.headers.get("x-github-api-version")
        if version is not None and version not in API_VERSIONS:
            return 400, {"message": "API version %s is not supported." % version,
                         "documentation_url": DOCS, "status": "400"}
        auth = self.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if not auth:
            return 401, {"message": "Requires authentication", "documentation_url": DOCS,
                         "status": "401"}
        if scheme.lower() not in ("bearer", "token") or token.strip() != self.options.token:
            return 401, {"message": "Bad credentials", "documentation_url": DOCS,
                         "status": "401"}
        if request is None:
            return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS,
                         "status": "400"}
        parts = path.strip("/").split("/")
        with LOCK:
            if self.command == "GET" and parts == ["user"]:
                return 200, self._user(f)
            if self.command == "GET" and len(parts) == 3 and parts[0] == "repos":
                repo = f.repos.get(("%s/%s" % (parts[1], parts[2])).lower())
                return (200, self._repo_json(repo)) if repo else not_found()
            if len(parts) >= 4 and parts[0] == "repos" and parts[3] == "pulls":
                repo = f.repos.get(("%s/%s" % (parts[1], parts[2])).lower())
                if repo is None:
                    return not_found()
                if self.command == "POST" and len(parts) == 4:
                    return self._open_pull(f, repo, request)
                if self.command == "GET" and len(parts) == 4:
                    return 200, self._list_pulls(f, repo, parse_qs(query))
                if self.command == "GET" and len(parts) == 5:
                    for pull in f.pulls:
                        if pull["repo"] == repo["full_name"] and str(pull["number"]) == parts[4]:
                            return 200, self._pull_json(repo, pull)
                    return not_found()
            if self.command == "GET" and len(parts) == 2 and parts[0] == "orgs":
                owner = f.owners.get(parts[1].lower())
                if not owner or owner["type"] != "Organization":
                    return not_found()
                return 200, {"login": owner["login"], "id": owner["id"],
                             "url": "%s/orgs/%s" % (self.base_url(), owner["login"])}
            if self.command == "POST" and parts == ["user", "repos"]:
                return self._create(f, self.options.user, request)
            if self.command == "POST" and len(parts) == 3 and parts[0] == "orgs" \
                    and parts[2] == "repos":
                if parts[1].lower() not in {o.lower() for o in self.options.org}:
                    return not_found()
                return self._create(f, f.owners[parts[1].lower()]["login"], request)
        return not_found()

    def _user(self, f):
        user = f.owners[self.options.user.lower()]
        return {"login": user["login"], "id": user["id"], "node_id": "U_fake%d" % user["id"],
                "type": "User", "site_admin": False, "name": None,
                "html_url": "%s/%s" % (self.base_url(), user["login"]),
                "url": "%s/users/%s" % (self.base_url(), user["login"])}

    def _create(self, f, owner, request):
        """POST /user/repos or /orgs/{org}/repos (the caller holds LOCK)."""
        doc = DOCS + "/repos/repos#create-a-repository-for-the-authenticated-user"
        name = request.get("name") if isinstance(request, dict) else None
        if not isinstance(name, str) or not name:
            return 422, {"message": "Repository creation failed.",
                         "errors": [{"resource": "Repository", "code": "missing_field",
                                     "field": "name"}],
                         "documentation_url": doc, "status": "422"}
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
        if name in (".", "..") or len(name) > 100:
            return 422, {"message": "Repository creation failed.",
                         "errors": [{"resource": "Repository", "code": "custom", "field": "name",
                                     "message": "name is invalid"}],
                         "documentation_url": doc, "status": "422"}
        full_name = "%s/%s" % (owner, name)
        if full_name.lower() in f.repos:
            return 422, {"message": "Repository creation failed.",
                         "errors": [{"resource": "Repository", "code": "custom", "field": "name",
                                     "message": "name already exists on this account"}],
                         "documentation_url": doc, "status": "422"}
        description = request.get("description")
        repo = f.make(full_name, description if isinstance(description, str) else None,
                      request.get("private", False) is True)
        f.created.append(repo["full_name"])
        return 201, self._repo_json(repo)

    def _open_pull(self, f, repo, request):
        """POST /repos/{owner}/{repo}/pulls (the caller holds LOCK)."""
        doc = DOCS + "/pulls/pulls#create-a-pull-request"

        def invalid(error):
            return 422, {"message": "Validation Failed",
                         "errors": [dict(error, resource="PullRequest")],
                         "documentation_url": doc, "status": "422"}

        if not isinstance(request, dict):
            request = {}
        for field in ("head", "base", "title"):
            if not isinstance(request.get(field), str) or not request[field]:
                return invalid({"code": "missing_field", "field": field})
        owner = repo["owner"]["login"]
        head = request["head"]
        if ":" in head:
            head_owner, _, head = head.partition(":")
            if head_owner.lower() != owner.lower():
                return invalid({"field": "head", "code": "invalid"})
        base = request["base"]
        head_sha = f.branch_sha(repo["full_name"], head)
        if head_sha is None:
            return invalid({"field": "head", "code": "invalid"})
        base_sha = f.branch_sha(repo["full_name"], base)
        if base_sha is None:
            return invalid({"field": "base", "code": "invalid"})
        if head == base or not f.has_commits_beyond(repo["full_name"], head_sha, base_sha):
            return invalid({"code": "custom",
                            "message": "No commits between %s and %s" % (base, head)})
        for pull in f.pulls:
            if pull["repo"] == repo["full_name"] and pull["state"] == "open" \
                    and pull["head"] == head and pull["base"] == base:
                return invalid({"code": "custom", "message": "A pull request already exists "
                                                             "for %s:%s." % (owner, head)})
        body = request.get("body")
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        f.next_id += 1
        pull = {"repo": repo["full_name"], "id": f.next_id,
                "number": 1 + sum(1 for p in f.pulls if p["repo"] == repo["full_name"]),
                "state": "open", "title": request["title"],
                "body": body if isinstance(body, str) else None, "head": head,
                "head_sha": head_sha, "base": base, "base_sha": base_sha,
                "draft": request.get("draft") is True, "created_at": now}
        f.pulls.append(pull)
        return 201, self._pull_json(repo, pull)

    def _list_pulls(self, f, repo, query):
        """GET /repos/{owner}/{repo}/pulls (the caller holds LOCK)."""
        state = query.get("state", ["open"])[0]
        head = query.get("head", [None])[0]
        base = query.get("base", [None])[0]
        owner = repo["owner"]["login"].lower()
        out = []
        for pull in f.pulls:
            if pull["repo"] != repo["full_name"]:
                continue
            if state != "all" and pull["state"] != state:
                continue
            if head is not None and head.lower() != "%s:%s" % (owner, pull["head"].lower()):
                continue
            if base is not None and base != pull["base"]:
                continue
            out.append(self._pull_json(repo, pull))
        return out

    def _pull_json(self, repo, pull):
        full = repo["full_name"]
        api = "%s/repos/%s/pulls/%d" % (self.base_url(), full, pull["number"])
        html = "%s/%s/pull/%d" % (self.base_url(), full, pull["number"])
        owner = dict(repo["owner"])
        repo_json = self._repo_json(repo)
        return {"url": api, "id": pull["id"], "node_id": "PR_fake%d" % pull["id"],
                "html_url": html, "diff_url": html + ".diff", "patch_url": html + ".patch",
                "number": pull["number"], "state": pull["state"], "locked": False,
                "title": pull["title"], "body": pull["body"], "user": owner,
                "created_at": pull["created_at"], "updated_at": pull["created_at"],
                "closed_at": None, "merged_at": None, "merge_commit_sha": None,
                "draft": pull["draft"], "merged": False,
                "head": {"label": "%s:%s" % (owner["login"], pull["head"]), "ref": pull["head"],
                         "sha": pull["head_sha"], "user": owner, "repo": repo_json},
                "base": {"label": "%s:%s" % (owner["login"], pull["base"]), "ref": pull["base"],
                         "sha": pull["base_sha"], "user": owner, "repo": repo_json}}

    def _repo_json(self, repo):
        out = dict(repo)
        full = repo["full_name"]
        out["owner"] = dict(repo["owner"], url="%s/users/%s" % (self.base_url(),
                                                                repo["owner"]["login"]))
        out["html_url"] = "%s/%s" % (self.base_url(), full)
        out["url"] = "%s/repos/%s" % (self.base_url(), full)
        out["clone_url"] = "%s/%s.git" % (self.base_url(), full)
        out["git_url"] = out["clone_url"]
        return out

    # --- /_fake/ ---

    def _control(self, f, name, body):
        try:
            request = json.loads(body or b"{}")
        except ValueError as e:
            return self._json(400, {"error": str(e)})
        with LOCK:
            if self.command == "GET" and name == "state":
                return self._json(200, {"created": list(f.created),
                                        "repos": [r["full_name"] for r in f.repos.values()],
                                        "pulls": [{k: p[k] for k in ("repo", "number", "head",
                                                                     "base", "title", "body")}
                                                  for p in f.pulls]})
            if self.command == "POST" and name == "repos":
                full_name = request.get("full_name", "") if isinstance(request, dict) else ""
                owner, _, repo_name = full_name.partition("/")
                if not owner or not NAME_OK.fullmatch(repo_name or "") or "/" in repo_name:
                    return self._json(400, {"error": "full_name: owner/name required"})
                repo = f.make(full_name, private=request.get("private", True) is not False)
                if request.get("reject_push"):
                    f.reject_push(repo["full_name"], str(request["reject_push"]))
                return self._json(200, self._repo_json(repo))
        self._json(404, {"error": "no such control endpoint: %s %s" % (self.command, name)})

    # --- git over HTTP ---

    def _plain(self, code, text, headers=()):
        data = text.encode()
        self.send_response(code)
        self.send_header("content-type", "text/plain; charset=utf-8")
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _git(self, f, owner, name, rest, query, body):
        user = self._basic_user()
        with LOCK:
            repo = f.repos.get(("%s/%s" % (owner, name)).lower())
            full_name = repo["full_name"] if repo else None
        # As on GitHub, anyone may fetch a public repository; pushing, and
        # anything of a private one, needs the token.
        reading = "git-upload-pack" in rest or "service=git-upload-pack" in query
        if user is None and not (repo is not None and not repo["private"] and reading):
            return self._plain(401, "Invalid username or token. Password authentication is "
                                    "not supported for Git operations.\n",
                               [("WWW-Authenticate", 'Basic realm="GitHub"')])
        if repo is None:
            return self._plain(404, "Repository not found.\n")
        env = dict(git_env(f.root), GIT_PROJECT_ROOT=f.root, GIT_HTTP_EXPORT_ALL="1",
                   GATEWAY_INTERFACE="CGI/1.1", SERVER_PROTOCOL="HTTP/1.1",
                   PATH_INFO="/%s.git%s" % (full_name.lower(), rest), QUERY_STRING=query,
                   REQUEST_METHOD=self.command, CONTENT_TYPE=self.headers.get("content-type", ""),
                   CONTENT_LENGTH=str(len(body)), REMOTE_USER=user or "", REMOTE_ADDR="127.0.0.1",
                   AUTH_TYPE="Basic")
        for key, value in self.headers.items():
            if key.lower() not in ("authorization", "content-type", "content-length"):
                env["HTTP_" + key.upper().replace("-", "_")] = value
        if "HTTP_GIT_PROTOCOL" in env:
            env["GIT_PROTOCOL"] = env["HTTP_GIT_PROTOCOL"]
        # A gzip body (Content-Encoding) goes through as sent: http-backend
        # inflates it itself (HTTP_CONTENT_ENCODING).
        done = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env)
        out = done.stdout
        split = out.find(b"\r\n\r\n")
        head, payload = (out[:split], out[split + 4:]) if split >= 0 else (b"", out)
        if split < 0:
            split = out.find(b"\n\n")
            if split >= 0:
                head, payload = out[:split], out[split + 2:]
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key.lower() not in ("content-length", "transfer-encoding", "connection") and key:
                headers.append((key, value.strip()))
        if done.returncode != 0 and not head:
            return self._plain(500, "git http-backend failed: %s\n"
                               % done.stderr.decode("utf-8", "replace"))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _basic_user(self):
        """The Basic user name whose password is the token, or None."""
        scheme, _, value = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except ValueError:
            return None
        return (user or "x-access-token") if password == self.options.token else None


def add_options(parser):
    parser.add_argument("--token", default="ghp_faketoken")
    parser.add_argument("--user", default="octocat", help="the token's user login")
    parser.add_argument("--org", action="append", default=[],
                        help="an organisation the user may create repositories in")
    parser.add_argument("--existing", action="append", default=[], metavar="OWNER/NAME",
                        help="a repository someone else made")
    parser.add_argument("--reject-push", action="append", default=[], metavar="OWNER/NAME",
                        help="a repository whose pre-receive hook refuses every push")


def _terminate(*_):
    sys.exit(0)  # runs the atexit cleanup of the repositories


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    serve(Handler, add_options)
