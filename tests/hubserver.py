"""A local stand-in for the Hugging Face Hub HTTP API, for tests of ``--push-to-hub`` and Hub-id input.

It implements the endpoints that the installed ``huggingface_hub`` (2.x) and ``datasets`` call to push a dataset
(``Dataset.push_to_hub``, ``DatasetCard.push_to_hub``) and to stream it back (``load_dataset(id, streaming=True)``),
answering with the JSON shapes and headers those clients parse:

- ``GET /api/whoami-v2``, ``POST /api/validate-yaml``, ``POST /api/repos/create``;
- ``GET /api/{type}s/{ns}/{name}[/revision/{rev}]`` (repo info), ``GET .../tree/{rev}[/{path}]``,
  ``POST .../paths-info/{rev}``, ``POST .../preupload/{rev}``, ``POST .../commit/{rev}`` (ndjson: regular files,
  LFS files, deletions; ``parentCommit`` is checked, 412 on a stale parent);
- the git-LFS batch API ``POST /{prefix}{ns}/{name}.git/info/lfs/objects/batch`` with single-part uploads to a
  pre-signed-like URL on this server (``PUT /_lfs/{oid}``) and a verify step;
- ``HEAD``/``GET /{prefix}{ns}/{name}/resolve/{rev}/{path}`` with the Hub's headers (``ETag``, ``X-Repo-Commit``,
  ``X-Linked-Etag``/``X-Linked-Size`` for LFS files) and byte ranges.

Authentication: ``tokens`` maps a token to ``"write"`` or ``"read"``. A token the server does not know gets 401
("Invalid credentials in Authorization header"), a read token that tries to write gets 403, and writes without a
token get 401, as on the Hub. Every request is recorded (method, path, query, headers, body, status, and the name
of the route that answered it); a request no route knows gets 404 and ``route=None``, so a test can assert that
the clients used nothing this server does not implement.

Setting ``HTTP_PROXY``/``HTTPS_PROXY`` to this server (with ``NO_PROXY=127.0.0.1``, see ``client_env``) catches
requests meant for any other host: they arrive in proxy form, are recorded with ``route="stray"`` and answered 502,
so that nothing leaves the machine (``datasets`` asks ``datasets-server.<endpoint host>`` for a parquet export).

Not covered: Xet storage (clients must run with ``HF_HUB_DISABLE_XET=1``), multipart LFS uploads, pull requests,
branches other than ``main``, tags, buckets, repo types other than what the routes parse, pagination of trees.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

# What a new dataset repo on the Hub starts with (abridged): binary and data formats go to LFS.
GITATTRIBUTES = """\
*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
"""
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024  # the Hub sends files above 10 MB to LFS whatever their name
PREFIXES = {"datasets": "dataset", "spaces": "space"}  # URL prefix -> repo type; no prefix: model
_API_REPO = re.compile(r"^/api/(models|datasets|spaces)/([^/]+)/([^/]+)(?:/(.*))?$")
_RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+)/resolve/([^/]+)/(.+)$")
_LFS_BATCH = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+)/([^/]+?)\.git/info/lfs/objects/batch$")


def git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class StoredFile:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def oid(self) -> str:
        """The git blob id: of the content, or of the LFS pointer for an LFS file (as git sees it)."""
        if self.lfs:
            return git_blob_oid(lfs_pointer(self.sha256, len(self.content)))
        return git_blob_oid(self.content)


@dataclass
class Commit:
    oid: str
    title: str
    date: str
    parent: str | None
    files: dict[str, StoredFile]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    created: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            found = [c for oid, c in self.commits.items() if oid.startswith(revision)]
            if len(found) == 1:
                return found[0]
        return None

    def commit(self, title: str, files: dict[str, StoredFile], branch: str = "main") -> Commit:
        parent = self.branches.get(branch)
        seed = f"{self.repo_id}\0{parent}\0{title}\0{len(self.commits)}\0{time.time_ns()}"
        c = Commit(hashlib.sha1(seed.encode()).hexdigest(), title, _now(), parent, files)
        self.commits[c.oid] = c
        self.branches[branch] = c.oid
        return c

    def last_commit_of(self, head: Commit, path: str) -> Commit:
        """The newest commit at or before ``head`` that changed ``path`` (a file, or anything under a folder)."""

        def view(c: Commit | None) -> dict[str, str]:
            if c is None:
                return {}
            return {p: f.oid for p, f in c.files.items() if p == path or p.startswith(path.rstrip("/") + "/")}

        c = head
        while c.parent is not None and view(c) == view(self.commits[c.parent]):
            c = self.commits[c.parent]
        return c


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # as sent, percent-encoded, without the query (for a stray: the whole target)
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int
    route: str | None  # the handler that answered; None: no route matched; "stray": meant for another host


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class HubServer:
    """A threaded HTTP server on 127.0.0.1 holding repos in memory. Use as a context manager."""

    def __init__(self, tokens: dict[str, str] | None = None, user: str = "me"):
        self.tokens = dict(tokens or {})
        self.user = user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self._announced: set[str] = set()  # LFS oids a batch call allowed to upload
        self.requests: list[Recorded] = []
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------- lifecycle

    def start(self) -> HubServer:
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hubserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client_env(self, token: str | None, home: str) -> dict[str, str]:
        """Environment variables that point huggingface_hub and datasets at this server, and only at it."""
        env = {
            "HF_ENDPOINT": self.url,
            "HF_HOME": home,
            "HF_HUB_CACHE": f"{home}/hub",
            "HF_DATASETS_CACHE": f"{home}/datasets",
            "HF_XET_CACHE": f"{home}/xet",
            "HF_HUB_DISABLE_XET": "1",  # the documented switch: upload through the LFS protocol, not Xet
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_OFFLINE": "0",
            "HF_DATASETS_OFFLINE": "0",
            # Anything meant for another host comes here in proxy form and is recorded as stray.
            "HTTP_PROXY": self.url,
            "HTTPS_PROXY": self.url,
            "ALL_PROXY": self.url,
            "NO_PROXY": "127.0.0.1",
        }
        if token is not None:
            env["HF_TOKEN"] = token
        return env

    # ------------------------------------------------------------------------------------------- inspection

    def files(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at ``revision``, as committed (LFS files with their real content)."""
        with self._lock:
            commit = self.repos[(repo_type, repo_id)].resolve(revision)
            assert commit is not None, f"no revision {revision} in {repo_id}"
            return {p: f.content for p, f in commit.files.items()}

    def commits(self, repo_id: str, repo_type: str = "dataset") -> list[Commit]:
        """The commits of ``main``, oldest first."""
        with self._lock:
            repo = self.repos[(repo_type, repo_id)]
            out, oid = [], repo.branches.get("main")
            while oid is not None:
                out.append(repo.commits[oid])
                oid = repo.commits[oid].parent
            return out[::-1]

    def find(self, method: str | None = None, route: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and (route is None or r.route == route)]

    def unhandled(self) -> list[Recorded]:
        """Requests that no route of this server knows (``route=None``)."""
        with self._lock:
            return [r for r in self.requests if r.route is None]

    # ------------------------------------------------------------------------------------------- dispatch

    def handle(self, req: _Request) -> _Response:
        """Route one request; errors become Hub-style error responses (X-Error-Code / X-Error-Message)."""
        if req.target.startswith(("http://", "https://")) or req.method == "CONNECT":
            return _Response(502, {"error": "this test Hub does not proxy"}, route="stray")
        route = None
        try:
            route, fn, args = self._route(req)
            if fn is None:
                raise HubError(404, f"no route for {req.method} {req.path}")
            self._check_token(req, route)
            with self._lock:
                resp = fn(req, *args)
            resp.route = route
            return resp
        except HubError as e:
            headers = {"X-Error-Message": e.message}
            if e.code:
                headers["X-Error-Code"] = e.code
            return _Response(e.status, {"error": e.message}, headers=headers, route=route)

    _WRITES = {"create_repo", "preupload", "commit", "lfs_batch", "lfs_verify"}

    def _route(self, req: _Request) -> tuple[str | None, Any, tuple]:
        p, m = req.path, req.method
        if p == "/api/whoami-v2" and m == "GET":
            return "whoami", self._whoami, ()
        if p == "/api/validate-yaml" and m == "POST":
            return "validate_yaml", self._validate_yaml, ()
        if p == "/api/repos/create" and m == "POST":
            return "create_repo", self._create_repo, ()
        if (match := re.fullmatch(r"/_lfs/([0-9a-f]{64})", p)) and m == "PUT":
            return "lfs_upload", self._lfs_upload, (match.group(1),)
        if (match := re.fullmatch(r"/_lfs/([0-9a-f]{64})/verify", p)) and m == "POST":
            return "lfs_verify", self._lfs_verify, (match.group(1),)
        if (match := _LFS_BATCH.match(p)) and m == "POST":
            repo_type = PREFIXES.get(match.group(1) or "", "model")
            return "lfs_batch", self._lfs_batch, (repo_type, f"{match.group(2)}/{match.group(3)}")
        if (match := _RESOLVE.match(p)) and m in ("GET", "HEAD"):
            repo_type = PREFIXES.get(match.group(1) or "", "model")
            repo_id = f"{unquote(match.group(2))}/{unquote(match.group(3))}"
            return "resolve", self._resolve, (repo_type, repo_id, unquote(match.group(4)), unquote(match.group(5)))
        if match := _API_REPO.match(p):
            repo_type = match.group(1)[:-1]
            repo_id = f"{unquote(match.group(2))}/{unquote(match.group(3))}"
            rest = match.group(4) or ""
            parts = rest.split("/") if rest else []
            if not parts and m == "GET":
                return "repo_info", self._repo_info, (repo_type, repo_id, "main")
            if len(parts) == 2 and parts[0] == "revision" and m == "GET":
                return "repo_info", self._repo_info, (repo_type, repo_id, unquote(parts[1]))
            if len(parts) >= 2 and parts[0] == "tree" and m == "GET":
                path = "/".join(unquote(x) for x in parts[2:])
                return "tree", self._tree, (repo_type, repo_id, unquote(parts[1]), path)
            if len(parts) == 2 and parts[0] == "paths-info" and m == "POST":
                return "paths_info", self._paths_info, (repo_type, repo_id, unquote(parts[1]))
            if len(parts) == 2 and parts[0] == "preupload" and m == "POST":
                return "preupload", self._preupload, (repo_type, repo_id, unquote(parts[1]))
            if len(parts) == 2 and parts[0] == "commit" and m == "POST":
                return "commit", self._commit, (repo_type, repo_id, unquote(parts[1]))
        return None, None, ()

    def _check_token(self, req: _Request, route: str) -> None:
        auth = req.headers.get("authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if token is not None and token not in self.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        req.token_scope = self.tokens.get(token) if token else None
        if route in self._WRITES:
            if token is None:
                raise HubError(401, "You must be authenticated to write to the Hub")
            if req.token_scope != "write":
                raise HubError(403, "You don't have the rights to write with a read-only token")

    def _repo(self, req: _Request, repo_type: str, repo_id: str) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and req.token_scope is None):
            raise HubError(404, "Repository not found", code="RepoNotFound")
        return repo

    def _commit_at(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        return commit

    # ------------------------------------------------------------------------------------------- routes

    def _whoami(self, req: _Request) -> _Response:
        if req.token_scope is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return _Response(200, {"type": "user", "name": self.user, "orgs": [],
                               "auth": {"type": "access_token", "accessToken": {"role": req.token_scope}}})

    def _validate_yaml(self, req: _Request) -> _Response:
        import yaml

        content = req.json().get("content", "")
        if content.startswith("---"):
            head = content.split("---", 2)[1] if content.count("---") >= 2 else ""
            try:
                yaml.safe_load(head)
            except yaml.YAMLError as e:
                return _Response(400, {"errors": [{"message": str(e)}], "warnings": []})
        return _Response(200, {"errors": [], "warnings": []})

    def _create_repo(self, req: _Request) -> _Response:
        body = req.json()
        name, org = body.get("name"), body.get("organization") or self.user
        repo_type = body.get("type") or "model"
        repo_id = f"{org}/{name}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{req.base_url}/{prefix}{repo_id}"
        if (repo_type, repo_id) in self.repos:
            raise HubError(409, "You already created this dataset repo")
        private = body.get("visibility") == "private" or bool(body.get("private"))
        repo = Repo(repo_type, repo_id, private, _now())
        repo.commit("initial commit", {".gitattributes": StoredFile(GITATTRIBUTES.encode(), lfs=False)})
        self.repos[(repo_type, repo_id)] = repo
        return _Response(200, {"url": url, "name": repo_id, "id": hashlib.sha1(url.encode()).hexdigest()[:24]})

    def _repo_info(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        import yaml

        repo = self._repo(req, repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        blobs = req.query_params.get("blobs", [""])[0].lower() == "true"
        siblings = []
        for path, f in sorted(commit.files.items()):
            sib: dict[str, Any] = {"rfilename": path}
            if blobs:
                sib.update(size=len(f.content), blobId=f.oid)
                if f.lfs:
                    sib["lfs"] = {"size": len(f.content), "sha256": f.sha256, "pointerSize": 134}
            siblings.append(sib)
        card_data = None
        readme = commit.files.get("README.md")
        if readme is not None and readme.content.startswith(b"---"):
            try:
                card_data = yaml.safe_load(readme.content.decode().split("---", 2)[1])
            except (yaml.YAMLError, IndexError):
                card_data = None
        return _Response(200, {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24], "id": repo_id,
            "author": repo_id.split("/")[0], "sha": commit.oid, "lastModified": commit.date,
            "createdAt": repo.created, "private": repo.private, "gated": False, "disabled": False, "tags": [],
            "downloads": 0, "likes": 0, "cardData": card_data, "siblings": siblings,
        })

    def _entry(self, repo: Repo, commit: Commit, path: str, expand: bool) -> dict[str, Any] | None:
        """The tree entry of ``path`` in ``commit`` (a file or a folder), or None when there is none."""
        f = commit.files.get(path)
        if f is not None:
            entry: dict[str, Any] = {"type": "file", "oid": f.oid, "size": len(f.content), "path": path}
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": len(f.content), "pointerSize": 134}
        elif any(p.startswith(path + "/") for p in commit.files):
            under = sorted((p, g.oid) for p, g in commit.files.items() if p.startswith(path + "/"))
            entry = {"type": "directory", "oid": hashlib.sha1(repr(under).encode()).hexdigest(), "size": 0,
                     "path": path}
        else:
            return None
        if expand:
            last = repo.last_commit_of(commit, path)
            entry["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        return entry

    def _tree(self, req: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> _Response:
        repo = self._repo(req, repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        recursive = req.query_params.get("recursive", [""])[0].lower() == "true"
        expand = req.query_params.get("expand", [""])[0].lower() == "true"
        path = path.strip("/")
        prefix = path + "/" if path else ""
        if path and not any(p.startswith(prefix) for p in commit.files):
            raise HubError(404, f"{path} does not exist on {revision}", code="EntryNotFound")
        names: set[str] = set()
        for p in commit.files:
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix):].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, depth + 1):
                names.add(prefix + "/".join(parts[:i]))
        entries = [self._entry(repo, commit, name, expand) for name in sorted(names)]
        return _Response(200, [e for e in entries if e is not None])

    def _paths_info(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self._repo(req, repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        form = req.form()
        expand = form.get("expand", ["False"])[0].lower() == "true"
        entries = [self._entry(repo, commit, p.strip("/"), expand) for p in form.get("paths", [])]
        return _Response(200, [e for e in entries if e is not None])

    def _lfs_patterns(self, commit: Commit) -> list[str]:
        attrs = commit.files.get(".gitattributes")
        text = attrs.content.decode() if attrs is not None else ""
        return [line.split()[0] for line in text.splitlines() if "filter=lfs" in line]

    def _preupload(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self._repo(req, repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        patterns = self._lfs_patterns(commit)
        out = []
        for f in req.json()["files"]:
            sample = base64.b64decode(f.get("sample", ""))
            name = f["path"].rsplit("/", 1)[-1]
            lfs = (f["size"] >= LFS_SIZE_THRESHOLD or b"\0" in sample
                   or any(fnmatch.fnmatch(name, pat) or fnmatch.fnmatch(f["path"], pat) for pat in patterns))
            existing = commit.files.get(f["path"])
            oid = None
            if existing is not None:  # the client compares it with its own to skip unchanged files
                oid = existing.sha256 if existing.lfs else existing.oid
            out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                        "oid": oid})
        return _Response(200, {"files": out, "commitOid": commit.oid})

    def _lfs_batch(self, req: _Request, repo_type: str, repo_id: str) -> _Response:
        self._repo(req, repo_type, repo_id)
        body = req.json()
        if body.get("operation") != "upload":
            raise HubError(400, "only uploads are supported")
        objects = []
        for obj in body["objects"]:
            oid, size = obj["oid"], obj["size"]
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.lfs:
                self._announced.add(oid)
                entry["actions"] = {
                    "upload": {"href": f"{req.base_url}/_lfs/{oid}", "header": {}},
                    "verify": {"href": f"{req.base_url}/_lfs/{oid}/verify", "header": {}},
                }
            objects.append(entry)
        return _Response(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                         headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _lfs_upload(self, req: _Request, oid: str) -> _Response:
        if oid not in self._announced:
            raise HubError(403, "upload URL not issued by a batch call")
        if hashlib.sha256(req.body).hexdigest() != oid:
            raise HubError(400, "content does not match its sha256")
        self.lfs[oid] = req.body
        self._announced.discard(oid)
        return _Response(200, b"")

    def _lfs_verify(self, req: _Request, oid: str) -> _Response:
        body = req.json()
        if body.get("oid") != oid or oid not in self.lfs or len(self.lfs[oid]) != body.get("size"):
            raise HubError(404, "object not uploaded")
        return _Response(200, {"success": True})

    def _commit(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        repo = self._repo(req, repo_type, repo_id)
        if req.query_params.get("create_pr"):
            raise HubError(400, "pull requests are not supported by this test Hub")
        if revision not in repo.branches:
            raise HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")
        head = repo.commits[repo.branches[revision]]
        files = dict(head.files)
        title = "commit"
        for line in req.body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                title = value.get("summary") or title
                parent = value.get("parentCommit")
                if parent is not None and not head.oid.startswith(parent):
                    raise HubError(412, "A commit has happened since. Please refresh and try again.")
            elif key == "file":
                if value.get("encoding") != "base64":
                    raise HubError(400, f"unsupported encoding {value.get('encoding')!r}")
                files[value["path"]] = StoredFile(base64.b64decode(value["content"]), lfs=False)
            elif key == "lfsFile":
                content = self.lfs.get(value["oid"])
                if content is None:
                    raise HubError(422, f"LFS object {value['oid']} of {value['path']} was not uploaded")
                files[value["path"]] = StoredFile(content, lfs=True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, "A file with this name doesn't exist", code="EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {p: f for p, f in files.items() if not p.startswith(folder)}
            else:
                raise HubError(400, f"unknown commit operation {key!r}")
        commit = repo.commit(title, files, branch=revision)
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        return _Response(200, {"success": True, "commitOid": commit.oid, "pullRequestUrl": None,
                               "commitUrl": f"{req.base_url}/{prefix}{repo_id}/commit/{commit.oid}"})

    def _resolve(self, req: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> _Response:
        repo = self._repo(req, repo_type, repo_id)
        commit = self._commit_at(repo, revision)
        f = commit.files.get(path)
        if f is None:
            raise HubError(404, "Entry not found", code="EntryNotFound")
        headers = {"X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        if f.lfs:
            headers.update({"ETag": f'"{f.sha256}"', "X-Linked-Etag": f'"{f.sha256}"',
                            "X-Linked-Size": str(len(f.content))})
        else:
            headers["ETag"] = f'"{f.oid}"'
        data, status = f.content, 200
        rng = req.headers.get("range")
        if rng and (match := re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())):
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            if start >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                return _Response(416, b"", headers=headers)
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start:end + 1], 206
        return _Response(status, data, headers=headers)


# ----------------------------------------------------------------------------------------------- HTTP plumbing


@dataclass
class _Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    token_scope: str | None = None

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> str:
        return urlsplit(self.target).query

    @property
    def query_params(self) -> dict[str, list[str]]:
        return parse_qs(self.query)

    @property
    def base_url(self) -> str:
        return f"http://{self.headers.get('host', '127.0.0.1')}"

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except json.JSONDecodeError as e:
            raise HubError(400, f"invalid JSON body: {e}") from None

    def form(self) -> dict[str, list[str]]:
        return parse_qs(self.body.decode())


@dataclass
class _Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    route: str | None = None

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        self.headers.setdefault("Content-Type", "application/json")
        return json.dumps(self.body).encode()


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect
    timeout = 30  # an idle keep-alive connection ends its thread

    def log_message(self, format: str, *args: Any) -> None:  # the record is in HubServer.requests
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = b"" if self.command in ("HEAD", "CONNECT") else self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        req = _Request(self.command, self.path, headers, body)
        resp = self.hub.handle(req)
        payload = resp.payload()
        with self.hub._lock:
            path = req.target if resp.route == "stray" else req.path  # a stray's target names its host
            self.hub.requests.append(Recorded(self.command, path, req.query, headers, body, resp.status,
                                              resp.route))
        self.send_response(resp.status)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        if resp.route == "stray":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_CONNECT = _serve
