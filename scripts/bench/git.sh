#!/usr/bin/env bash
# Git benchmark: airlock's git path (mirror, then export as standard git bundles) against
# what an operator would do by hand with git alone, on the same upstream, in one run.
#
# Upstream: 5 generated repositories with realistic history (fast-import streams written
# by a seeded Python generator: thousands of commits editing source-like text files,
# stable branches with backports, merged and open feature branches, annotated and
# lightweight tags, one repository with incompressible binary assets), about 150 MB of
# packs in all, served by `git daemon` on a free loopback port. They are generated once
# into $BENCH_DIR/generated and reused; every run serves a fresh copy of them.
#
# Timed, each under /usr/bin/time -f '%e %M %U %S' (wall s, peak RSS KiB, user, sys):
#   full       airlock mirror (empty cache)      vs  git clone --mirror, per repository
#              airlock export --compression none vs  git bundle create X.bundle --all
#              (airlock mirror fetches up to 8 repositories at once; the git loop does
#              one after another, so `git clone --mirror` of all at once is timed too)
#   then upstream moves on (BENCH_UPDATE_COMMITS commits on main, 2 backports on the
#   newest stable branch and a new tag on each, per repository), and:
#   incremental airlock mirror                      vs  git fetch --prune (in the mirrors; and all at once)
#              airlock export --since <full bundle> vs  git bundle create --all ^<old tips>
#   import     airlock import of the full bundle into a fresh store  vs  git clone --mirror
#              from each git bundle inside it (the same bytes), in BENCH_REPEAT interleaved
#              rounds, medians reported
# Ratios are baseline time / airlock time (> 1: airlock is faster). Sizes compare the
# .airlock file, the git bundles inside it and git's own bundles. Both sides run with the
# same git, an empty HOME (no global config) and GIT_CONFIG_NOSYSTEM=1, and page caches
# WARM (upstream packs are read once before timing; `sync` runs before every step so one
# step's write-back does not land in the next one's time). airlock fsyncs what it writes,
# git does not: the `sync` of git's bundles afterwards is shown for information.
#
# Peak RSS: %M of /usr/bin/time is the largest single process of the tree (git children
# included); "airlock itself" is the airlock process's own VmHWM, polled every 0.1 s.
# Where the time goes: every git process writes GIT_TRACE2_EVENT records, summed per git
# command (and per child, e.g. index-pack under fetch) for each step.
# A check compares the refs of airlock's bundles with git's own (git bundle list-heads).
#
# Environment:
#   BENCH_DIR             work dir (default <repo>/scratch/bench-git; git-ignored)
#   BENCH_UPDATE_COMMITS  commits added on main per repository before the incremental run (20)
#   BENCH_SKIP_BUILD      set to 1 to use target/release/airlock as it is
#   BENCH_IDLE_WAIT       seconds to wait for an idle machine before timing (default 120)
#   BENCH_REPEAT          rounds of the import comparison (default 3; the median is reported)
#   BENCH_BASELINE        another airlock binary (an earlier build) whose import is timed in
#                         the same rounds, side by side
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD

BENCH_DIR=${BENCH_DIR:-$REPO/scratch/bench-git}
UPDATE_COMMITS=${BENCH_UPDATE_COMMITS:-20}
BUILT=$REPO/target/release/airlock
AIRLOCK=$BENCH_DIR/bin/airlock   # a copy, so a concurrent rebuild cannot swap it mid-run
REPOS=(libfoo service monorepo docs assets)   # shapes defined in the generator

TOOLS=$BENCH_DIR/tools       # the generator and helpers, written by this script
GENERATED=$BENCH_DIR/generated   # pristine upstream repositories, reused across runs
UP=$BENCH_DIR/upstream       # this run's copy, served by git daemon and then updated
RUN=$BENCH_DIR/run           # this run: spec, airlock cache, bundles, git mirrors
TIMES=$BENCH_DIR/times
LOGS=$BENCH_DIR/logs

# per timed step: wall s, peak RSS KiB (tree), airlock's own VmHWM KiB, CPU %, the git
# daemon's CPU % (the server side: upload-pack, pack-objects), others' CPU %
declare -A SEC RSS OWN CPU SERVER OTHER
DAEMON_PID=
SERVER_PID=

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
die() { printf 'git.sh: %s\n' "$*" >&2; exit 1; }

# --- 1. tools and build ------------------------------------------------------------------

check_tools() {
    local missing=()
    for t in cargo git python3 tar awk sha256sum sync flock; do
        command -v "$t" >/dev/null || missing+=("$t")
    done
    [ -x /usr/bin/time ] || missing+=("/usr/bin/time (apt-get install -y time)")
    [ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]}"
    command -v git >/dev/null && { [ -x "$(git --exec-path)/git-daemon" ] || die "git daemon is missing (it ships with Debian's git package)"; }
    [[ $UPDATE_COMMITS =~ ^[1-9][0-9]*$ ]] || die "BENCH_UPDATE_COMMITS must be a positive integer, not '$UPDATE_COMMITS'"
}

# One run at a time per BENCH_DIR: a second run would delete this one's files mid-way.
lock_bench_dir() {
    mkdir -p "$BENCH_DIR"
    exec 9> "$BENCH_DIR/.lock"
    if ! flock -n 9; then
        echo "git.sh: another run is using $BENCH_DIR; waiting for it (set BENCH_DIR to run both at once)" >&2
        flock 9
    fi
}

build() {
    if [ "${BENCH_SKIP_BUILD:-0}" = 1 ]; then
        say "using the existing release binary (BENCH_SKIP_BUILD=1)"
    else
        say "building airlock (cargo build --release)"
        cargo build --release || die "cargo build --release failed"
    fi
    [ -x "$BUILT" ] || die "$BUILT was not built"
    mkdir -p "$(dirname "$AIRLOCK")"
    cp "$BUILT" "$AIRLOCK.tmp" && mv "$AIRLOCK.tmp" "$AIRLOCK"
    "$AIRLOCK" --version >&2
}

check_space() {
    mkdir -p "$BENCH_DIR"
    local free_kib
    free_kib=$(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
    # generated + upstream copy + airlock cache and store + bundles + git mirrors and bundles
    [ "$free_kib" -ge $((3 * 1024 * 1024)) ] || die "need about 3 GiB free in $BENCH_DIR, have $((free_kib / 1048576)) GiB"
}

# git for everything after the build: no global or system config, C locale.
isolate_git() {
    mkdir -p "$BENCH_DIR/home"
    export HOME=$BENCH_DIR/home GIT_CONFIG_NOSYSTEM=1 LC_ALL=C GIT_TERMINAL_PROMPT=0
    unset GIT_DIR GIT_WORK_TREE GIT_TRACE2_EVENT
}

# --- 2. the upstream repositories ----------------------------------------------------------

write_tools() {
    mkdir -p "$TOOLS"
    # The generator: a fast-import stream per repository shape (see its docstring).
    cat > "$TOOLS/gen.py.tmp" <<'PY'
"""Fast-import stream generator for the git benchmark's upstream repositories.

  gen.py full NAME DELETE_LIST   a whole history for the shape NAME (stdout), and the
                                 merged feature branches to delete afterwards
  gen.py update REPO NAME N      N more commits on main, 2 backports on the newest
                                 stable branch and two tags, on top of REPO (stdout)

Deterministic: every choice comes from random.Random seeded by the repository name.
"""
import random, subprocess, sys

# shape: files at the start, commits in all, stable branches, lines per file, text kind,
# binary assets (incompressible, 64 KiB - 2 MiB each, some replaced later)
SHAPES = {
    "libfoo":   dict(files=150,  commits=600,  stables=2, lines=120, kind="code",  binaries=0),
    "service":  dict(files=1000, commits=2500, stables=3, lines=150, kind="code",  binaries=0),
    "monorepo": dict(files=5000, commits=6000, stables=4, lines=160, kind="code",  binaries=0),
    "docs":     dict(files=400,  commits=900,  stables=1, lines=200, kind="prose", binaries=0),
    "assets":   dict(files=200,  commits=400,  stables=1, lines=100, kind="code",  binaries=40),
}

WORDS = ("request response handler client server config option value buffer stream reader writer "
         "index entry table record field column row cache store blob digest hash key token session "
         "user group role policy rule filter matcher pattern path file dir volume bundle manifest "
         "artifact image layer package version release branch tag commit tree object pack delta "
         "queue worker task job event signal timer clock retry backoff limit quota budget metric "
         "counter gauge histogram span trace log level message error warning status state mode flag "
         "network socket address port host route proxy gateway tunnel cert chain trust verify sign "
         "encode decode parse format render template schema model view controller service node "
         "cluster shard replica leader follower vote term epoch snapshot compact merge split batch").split()
TYPES = "Vec<u8> String u64 usize bool Path Config Request Response Digest Entry Table Error".split()
AUTHORS = [(f"Dev {n}", f"dev{n}@upstream.example") for n in
           "Ada Bob Cem Dai Eve Fay Gus Hal Ivy Jon Kai Lea Max Nia Oto Pia Qiu Rex Sol Tao".split()]
COMPONENTS = "core api cli docs tests build net store auth sched ui db".split()


class Gen:
    def __init__(self, seed, kind="code"):
        self.r = random.Random(seed)
        self.kind = kind
        self.out = sys.stdout.buffer
        self.mark = 0

    def w(self, s):
        self.out.write(s.encode() if isinstance(s, str) else s)

    def data(self, b):
        if isinstance(b, str):
            b = b.encode()
        self.w(b"data %d\n" % len(b))
        self.w(b)
        self.w(b"\n")

    def word(self):
        return self.r.choice(WORDS)

    def ident(self):
        return self.word() + "_" + self.word()

    def line(self):
        r = self.r
        if self.kind == "prose":
            return " ".join(self.word() for _ in range(r.randint(6, 16))) + r.choice([".", ",", ";", ""])
        ind = "    " * r.randint(0, 3)
        k = r.random()
        if k < 0.30:
            return f"{ind}let {self.ident()} = {self.word()}.{self.ident()}({self.word()}, {r.randint(0, 4096)});"
        if k < 0.45:
            return f"{ind}if {self.word()}.{self.word()}() > {r.randint(0, 99)} {{"
        if k < 0.55:
            return f"{ind}// " + " ".join(self.word() for _ in range(r.randint(3, 10)))
        if k < 0.65:
            return f"{ind}return {self.word().capitalize()}::{self.ident()}({self.word()});"
        if k < 0.72:
            return f"{ind}}}"
        if k < 0.78:
            return ""
        if k < 0.86:
            return (f"pub fn {self.ident()}({self.word()}: &{r.choice(TYPES)}, {self.word()}: "
                    f"{r.choice(TYPES)}) -> Result<{r.choice(TYPES)}> {{")
        return f"{ind}{self.word()}.{self.ident()}(&{self.word()})?;"

    def lines(self, n):
        return tuple(self.line() for _ in range(n))

    def edit(self, lines):
        """1-3 hunks: replace, insert or delete a few lines."""
        r = self.r
        lines = list(lines)
        for _ in range(r.randint(1, 3)):
            pos = r.randint(0, len(lines))
            k = r.random()
            if k < 0.5 and lines:
                n = r.randint(1, 6)
                lines[pos:pos + n] = self.lines(r.randint(1, 6))
            elif k < 0.85 or len(lines) < 20:
                lines[pos:pos] = self.lines(r.randint(1, 12))
            else:
                del lines[pos:pos + r.randint(1, 8)]
        return tuple(lines)

    def message(self):
        r = self.r
        subject = f"{r.choice(COMPONENTS)}: " + " ".join(self.word() for _ in range(r.randint(3, 8)))
        body = "\n".join(" ".join(self.word() for _ in range(r.randint(8, 14))) for _ in range(r.randint(0, 6)))
        return f"{subject}\n\n{body}\n\nChange-Id: I{r.getrandbits(160):040x}\n"

    def who(self, t):
        name, mail = self.r.choice(AUTHORS)
        return f"{name} <{mail}> {t} +0000"

    def commit(self, ref, t, changes, frm=None, merge=None):
        """changes: list of (path, content tuple | bytes) or (path, None) to delete."""
        self.mark += 1
        who = self.who(t)
        self.w(f"commit {ref}\nmark :{self.mark}\nauthor {who}\ncommitter {who}\n")
        self.data(self.message())
        if frm is not None:
            self.w(f"from {frm}\n")
        if merge is not None:
            self.w(f"merge {merge}\n")
        for path, content in changes:
            if content is None:
                self.w(f"D {path}\n")
            else:
                self.w(f"M 100644 inline {path}\n")
                self.data(content if isinstance(content, bytes) else "\n".join(content) + "\n")
        self.w("\n")
        return f":{self.mark}"

    def tag(self, name, frm, t, annotated=True):
        if annotated:
            self.w(f"tag {name}\nfrom {frm}\ntagger {self.who(t)}\n")
            self.data(f"release {name}\n")
        else:
            self.w(f"reset refs/tags/{name}\nfrom {frm}\n\n")

    def pick_changes(self, files, new_path):
        """A typical commit: mostly 1-4 files edited, sometimes a wide refactor; some
        files added, deleted or renamed. Updates `files` (path -> lines | bytes)."""
        r = self.r
        n = r.randint(10, 30) if r.random() < 0.02 else min(1 + int(r.expovariate(0.7)), 8)
        paths = sorted(p for p, c in files.items() if not isinstance(c, bytes))
        changes = []
        for _ in range(n):
            k = r.random()
            if k < 0.90 or len(paths) < 10:
                p = r.choice(paths)
                files[p] = self.edit(files[p])
                changes.append((p, files[p]))
            elif k < 0.96:
                p = new_path()
                files[p] = self.lines(r.randint(20, 300))
                changes.append((p, files[p]))
                paths.append(p)
            elif k < 0.99:
                p = r.choice(paths)
                paths.remove(p)
                del files[p]
                changes.append((p, None))
            else:
                p = r.choice(paths)
                paths.remove(p)
                q = new_path()
                files[q] = files.pop(p)
                changes += [(p, None), (q, files[q])]
        return changes


def full(name, delete_list):
    shape = SHAPES[name]
    g = Gen(f"airlock-bench/{name}", shape["kind"])
    r = g.r
    ext = ".md" if shape["kind"] == "prose" else ".rs"
    dirs = [f"{c}/{s}" for c in COMPONENTS for s in ("src", "lib", "util", "internal")]
    counter = [0]

    def new_path():
        counter[0] += 1
        return f"{r.choice(dirs)}/{g.word()}_{counter[0]:05d}{ext}"

    files = {}
    for _ in range(shape["files"]):
        files[new_path()] = g.lines(max(10, int(r.lognormvariate(0, 0.6) * shape["lines"])))
    bins = []
    for i in range(shape["binaries"]):
        p = f"assets/media/blob_{i:03d}.bin"
        files[p] = r.randbytes(int(2 ** r.uniform(16, 21)))
        bins.append(p)
    t = 1_600_000_000
    main = g.commit("refs/heads/main", t, sorted(files.items()))
    g.tag("v0.1.0", main, t)

    stable_at = sorted(r.sample(range(shape["commits"] // 5, shape["commits"] - 50), shape["stables"]))
    stables = {}    # name -> [files, tip, patch number]
    features = {}   # name -> [files, tip, commits left, changed paths]
    merged = []
    major = 1
    for i in range(shape["commits"]):
        t += r.randint(600, 7200)
        k = r.random()
        if features and k < 0.25:
            fname = r.choice(sorted(features))
            f = features[fname]
            changes = g.pick_changes(f[0], new_path)
            f[1] = g.commit(f"refs/heads/{fname}", t, changes)
            f[2] -= 1
            f[3].update(p for p, _ in changes)
            if f[2] == 0 and r.random() < 0.8:     # merge into main, delete the branch
                back = [(p, f[0].get(p)) for p in sorted(f[3])]
                for p, c in back:
                    if c is None:
                        files.pop(p, None)
                    else:
                        files[p] = c
                main = g.commit("refs/heads/main", t + 1, back, merge=f[1])
                merged.append(fname)
                del features[fname]
            continue
        if stables and k < 0.33:
            sname = r.choice(sorted(stables))
            s = stables[sname]
            s[1] = g.commit(f"refs/heads/{sname}", t, g.pick_changes(s[0], new_path))
            if r.random() < 0.2:
                s[2] += 1
                g.tag(f"{sname.split('/')[1][:-2]}.{s[2]}", s[1], t)
            continue
        changes = g.pick_changes(files, new_path)
        if bins and r.random() < 0.08:             # an asset replaced wholesale
            p = r.choice(bins)
            files[p] = r.randbytes(int(2 ** r.uniform(16, 21)))
            changes.append((p, files[p]))
        main = g.commit("refs/heads/main", t, changes)
        if stable_at and i >= stable_at[0]:         # a release: tag, and a stable branch
            stable_at.pop(0)
            g.tag(f"v{major}.0.0", main, t)
            sname = f"stable/{major}.x"
            stables[sname] = [dict(files), main, 0]
            g.w(f"reset refs/heads/{sname}\nfrom {main}\n\n")
            major += 1
        elif i % 97 == 0:
            g.tag(f"nightly-{i:05d}", main, t, annotated=False)
        if r.random() < 1 / 60:
            fname = f"feature/{g.word()}-{i}"
            features[fname] = [dict(files), main, r.randint(3, 12), set()]
            g.w(f"reset refs/heads/{fname}\nfrom {main}\n\n")
    with open(delete_list, "w") as f:
        for fname in merged:
            f.write(f"delete refs/heads/{fname}\n")


def update(repo, name, n):
    """Upstream moves on: n commits on main, 2 on the newest stable branch, 2 tags."""
    g = Gen(f"airlock-bench/{name}/update", SHAPES[name]["kind"])
    r = g.r

    def git(*args):
        return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout

    cat = subprocess.Popen(["git", "-C", repo, "cat-file", "--batch"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def blob(rev, path):
        cat.stdin.write(f"{rev}:{path}\n".encode())
        cat.stdin.flush()
        size = int(cat.stdout.readline().split()[2])
        b = cat.stdout.read(size + 1)[:-1]
        return tuple(b.decode().split("\n")[:-1])

    t = int(git("log", "-1", "--format=%ct", "refs/heads/main")) + 3600
    stables = sorted(git("for-each-ref", "--format=%(refname)", "refs/heads/stable/").split(),
                     key=lambda s: int(s.rsplit("/", 1)[1].split(".")[0]))
    counter = [0]

    def new_path():
        counter[0] += 1
        return f"update/{g.word()}_{counter[0]:05d}.rs"

    for ref, count in [("refs/heads/main", n)] + [(s, 2) for s in stables[-1:]]:
        paths = [p for p in git("ls-tree", "-r", "--name-only", ref).split("\n") if p.endswith((".rs", ".md"))]
        # a lazily loaded view of the tree: only the files a commit touches are read
        files = {p: None for p in paths}

        tip = None
        for i in range(count):
            t += r.randint(600, 7200)
            for p in r.sample(paths, 8):
                if files[p] is None:
                    files[p] = blob(ref, p)
            view = {p: c for p, c in files.items() if c is not None}
            changes = []
            for _ in range(min(1 + int(r.expovariate(0.7)), 8)):
                p = r.choice(sorted(view))
                view[p] = files[p] = g.edit(view[p])
                changes.append((p, view[p]))
            tip = g.commit(ref, t, changes, frm=f"{ref}^0" if i == 0 else None)
        g.tag(f"bench-update-{ref.rsplit('/', 1)[1]}", tip, t)
    cat.stdin.close()
    cat.wait()


if __name__ == "__main__":
    if sys.argv[1] == "full":
        full(sys.argv[2], sys.argv[3])
    else:
        update(sys.argv[2], sys.argv[3], int(sys.argv[4]))
PY
    mv "$TOOLS/gen.py.tmp" "$TOOLS/gen.py"

    # bundle_blobs.py AIRLOCK_FILE OUT_DIR: extract each git artifact's bundle (an
    # uncompressed .airlock is a plain tar) as OUT_DIR/<name>.bundle; print "name bytes".
    cat > "$TOOLS/bundle_blobs.py" <<'PY'
import json, os, sys, tarfile
path, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
with tarfile.open(path, "r:") as t:
    m = json.load(t.extractfile("manifest.json"))
    sizes = {b["digest"]: b["size"] for b in m["blobs"]}
    for a in m["artifacts"]:
        if a["kind"] != "git":
            continue
        for d in a["blobs"]:
            with t.extractfile("blobs/sha256/" + d.split(":", 1)[1]) as src, open(f"{out}/{a['name']}.bundle", "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            print(a["name"], sizes[d])
PY

    # baseline.sh STEP DIR PORT REPO...: the git-only way, one repository after another.
    cat > "$TOOLS/baseline.sh" <<'BASH'
set -euo pipefail
step=$1 dir=$2 port=$3; shift 3
# clone-par / fetch-par: every repository at once, as airlock mirror does (--jobs 8)
if [ "$step" = clone-par ] || [ "$step" = fetch-par ]; then
    pids=()
    for r in "$@"; do
        if [ "$step" = clone-par ]; then
            git clone -q --mirror "git://127.0.0.1:$port/$r.git" "$dir/$r.git" &
        else
            git -C "$dir/$r.git" fetch -q --prune origin &
        fi
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
    exit 0
fi
for r in "$@"; do
    m=$dir/$r.git
    case $step in
        clone)      git clone -q --mirror "git://127.0.0.1:$port/$r.git" "$m" ;;
        bundle)     git -C "$m" bundle create -q "$dir/$r.bundle" --all ;;
        fetch)      git -C "$m" fetch -q --prune origin ;;
        # everything new since the old tips (every ref's object before the fetch)
        bundle-inc) git -C "$m" bundle create -q "$dir/$r.inc.bundle" --all $(sed 's/^/^/' "$dir/$r.old") ;;
        *)          echo "baseline.sh: unknown step $step" >&2; exit 2 ;;
    esac
done
BASH

    # trace2.py FILE: seconds per git command from GIT_TRACE2_EVENT records. Top-level
    # processes (started by airlock or the shell) by command name, with the time of the
    # git processes they started themselves (index-pack under fetch, pack-objects under
    # bundle, ...). Prints "total_top_level_seconds" on the first line.
    cat > "$TOOLS/trace2.py" <<'PY'
import json, sys
from datetime import datetime
name, secs, start = {}, {}, {}
for line in open(sys.argv[1], errors="replace"):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    sid = e.get("sid", "")
    if e.get("event") == "cmd_name":
        name[sid] = e.get("name", "?")
    if e.get("event") == "start" and "time" in e:
        start[sid] = datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
    if e.get("event") == "start" and sid not in name:
        argv = [a for a in e.get("argv", [])[1:]]
        while argv and argv[0] in ("-C", "-c"):
            argv = argv[2:]
        name.setdefault(sid, argv[0] if argv else "?")
    elif e.get("event") == "exit":
        secs[sid] = e.get("t_abs", 0.0)
top, child = {}, {}
for sid, s in secs.items():
    parts = sid.split("/")
    if len(parts) == 1:
        n = name.get(sid, "?")
        c = top.setdefault(n, [0, 0.0])
        c[0] += 1; c[1] += s
    elif len(parts) == 2:
        key = (name.get(parts[0], "?"), name.get(sid, "?"))
        c = child.setdefault(key, [0, 0.0])
        c[0] += 1; c[1] += s
# wall time covered by at least one top-level git process, and the most at once
spans = sorted((start[sid], start[sid] + s) for sid, s in secs.items() if "/" not in sid and sid in start)
covered, end, most, events = 0.0, None, 0, []
for a, b in spans:
    if end is None or a > end:
        covered += b - a
        end = b
    elif b > end:
        covered += b - end
        end = b
    events += [(a, 1), (b, -1)]
now = 0
for _, d in sorted(events):
    now += d
    most = max(most, now)
print(f"{sum(v[1] for v in top.values()):.3f} {covered:.3f} {most}")
for n, (k, s) in sorted(top.items(), key=lambda x: -x[1][1]):
    kids = ", ".join(f"{cn} {cs:.2f}s" for (pn, cn), (ck, cs) in sorted(child.items(), key=lambda x: -x[1][1]) if pn == n)
    print(f"git {n} x{k}: {s:.2f}s" + (f" (in it: {kids})" if kids else ""))
PY
}

# A stamp of the generator: the repositories are regenerated when it changes.
generator_stamp() { sha256sum "$TOOLS/gen.py" | cut -c1-16; }

generate_upstreams() {
    local stamp; stamp=$(generator_stamp)
    if [ -f "$GENERATED/.complete" ] && [ "$(cat "$GENERATED/.complete")" = "$stamp" ]; then
        say "reusing the upstream repositories in $GENERATED (generator $stamp)"
        return
    fi
    say "generating ${#REPOS[@]} upstream repositories in $GENERATED (once; reused by later runs)"
    rm -rf "$GENERATED"
    mkdir -p "$GENERATED"
    local r
    for r in "${REPOS[@]}"; do
        printf '  %-10s ' "$r" >&2
        git init -q --bare -b main "$GENERATED/$r.git"
        /usr/bin/time -f '%e s' -o "$GENERATED/$r.time" bash -c \
            'set -o pipefail; python3 "$1" full "$2" "$3" | git -C "$4" fast-import --quiet' \
            _ "$TOOLS/gen.py" "$r" "$GENERATED/$r.merged" "$GENERATED/$r.git" || die "generating $r failed"
        # merged feature branches are deleted, as upstream would; then pack like a served repo
        git -C "$GENERATED/$r.git" update-ref --stdin < "$GENERATED/$r.merged"
        git -C "$GENERATED/$r.git" repack -adq
        git -C "$GENERATED/$r.git" pack-refs --all
        git -C "$GENERATED/$r.git" fsck --no-progress --connectivity-only || die "$r is not consistent"
        printf '%s, %s commits, %s refs\n' "$(cat "$GENERATED/$r.time")" \
            "$(git -C "$GENERATED/$r.git" rev-list --all --count)" "$(git -C "$GENERATED/$r.git" for-each-ref | wc -l)" >&2
    done
    echo "$stamp" > "$GENERATED/.complete"
}

# This run's upstream: a fresh copy of the generated repositories (the update changes it).
fresh_upstream() {
    rm -rf "$UP"
    mkdir -p "$UP"
    local r
    for r in "${REPOS[@]}"; do cp -a "$GENERATED/$r.git" "$UP/"; done
}

# Upstream moves on: new commits on main and on the newest stable branch, and new tags.
update_upstream() {
    local r
    for r in "${REPOS[@]}"; do
        python3 "$TOOLS/gen.py" update "$UP/$r.git" "$r" "$UPDATE_COMMITS" | git -C "$UP/$r.git" fast-import --quiet \
            || die "updating $r failed"
    done
}

describe_upstream() {   # one line per repository: name commits refs pack-bytes
    local r
    for r in "${REPOS[@]}"; do
        printf '%s %s %s %s\n' "$r" "$(git -C "$UP/$r.git" rev-list --all --count)" \
            "$(git -C "$UP/$r.git" for-each-ref | wc -l)" \
            "$(du -sb "$UP/$r.git/objects/pack" | cut -f1)"
    done
}

# --- 3. git daemon -----------------------------------------------------------------------

start_daemon() {
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    git daemon --reuseaddr --export-all --listen=127.0.0.1 --port="$PORT" --base-path="$UP" "$UP" \
        > "$LOGS/daemon.log" 2>&1 &
    DAEMON_PID=$!
    local i
    for i in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            # `git daemon` runs git-daemon as its child: that one reaps the servers
            # (the file has no newline: read assigns, then reports end of file)
            read -r SERVER_PID _ < "/proc/$DAEMON_PID/task/$DAEMON_PID/children" || true
            [ -n "$SERVER_PID" ] || SERVER_PID=$DAEMON_PID
            echo "  git daemon (pid $DAEMON_PID, server $SERVER_PID) on 127.0.0.1:$PORT" >&2
            return
        fi
        kill -0 "$DAEMON_PID" 2>/dev/null || die "git daemon exited: $(cat "$LOGS/daemon.log")"
        sleep 0.1
    done
    die "git daemon did not listen on $PORT"
}

stop_daemon() {
    if [ -n "$DAEMON_PID" ]; then
        [ -n "$SERVER_PID" ] && [ "$SERVER_PID" != "$DAEMON_PID" ] && { kill "$SERVER_PID" 2>/dev/null || true; }
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=
    fi
}

url() { echo "git://127.0.0.1:$PORT/$1.git"; }

# --- 4. measurement ----------------------------------------------------------------------

# Busy CPU seconds of the whole machine so far (all CPUs, from /proc/stat).
busy_seconds() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# CPU seconds the git daemon and the servers it reaped have used so far.
server_seconds() {
    [ -n "$SERVER_PID" ] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / hz }' "/proc/$SERVER_PID/stat"
}

# Wait (up to BENCH_IDLE_WAIT s) until other processes use under 10% of one core.
wait_for_idle() {
    local limit=${BENCH_IDLE_WAIT:-120} waited=0 a b busy
    while :; do
        a=$(busy_seconds); sleep 5; b=$(busy_seconds)
        busy=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.0f", (b - a) / 5 * 100 }')
        [ "$busy" -lt 10 ] && { echo "  machine idle (${busy}% of a core busy)" >&2; return; }
        if [ "$waited" -ge "$limit" ]; then
            echo "  WARNING: still ${busy}% of a core busy after ${limit}s; timing anyway (see other%)" >&2
            return
        fi
        [ "$waited" -eq 0 ] && echo "  other processes use ${busy}% of a core; waiting for idle" >&2
        waited=$((waited + 5))
    done
}

# The airlock process's own peak RSS (VmHWM, KiB): poll the only child of /usr/bin/time
# (pid $1) until time exits. Builtins only, so polling costs next to nothing.
poll_own_rss() {
    local tpid=$1 hwm=0 child stat k v _
    while read -r stat 2>/dev/null < "/proc/$tpid/stat" && [[ $stat != *") Z "* ]]; do
        child=
        read -r child _ 2>/dev/null < "/proc/$tpid/task/$tpid/children" || true   # no newline there
        if [ -n "$child" ]; then
            while read -r k v _; do
                [ "$k" = VmHWM: ] && { [ "$v" -gt "$hwm" ] && hwm=$v; break; }
            done 2>/dev/null < "/proc/$child/status" || true
        fi
        sleep 0.1
    done
    echo "$hwm"
}

# timed NAME CMD...: run CMD under /usr/bin/time with git tracing to $LOGS/NAME.trace2;
# record wall s, peak RSS, CPU % and what other processes used meanwhile. Output goes to
# $LOGS/NAME.out and NAME.err.
timed() {
    local name=$1; shift
    sync   # flush earlier writes outside the measurement; caches stay warm
    printf '  %-34s ' "$name" >&2
    local before after sbefore safter e m u s tpid own=0
    rm -f "$LOGS/$name.trace2"
    sbefore=$(server_seconds)
    before=$(busy_seconds)
    GIT_TRACE2_EVENT=$LOGS/$name.trace2 /usr/bin/time -f '%e %M %U %S' -o "$TIMES/$name" "$@" \
        > "$LOGS/$name.out" 2> "$LOGS/$name.err" &
    tpid=$!
    { [ "$1" = "$AIRLOCK" ] || [ "$1" = "${BENCH_BASELINE:-}" ]; } && own=$(poll_own_rss "$tpid")
    wait "$tpid" || { cat "$LOGS/$name.err" >&2; die "$name failed"; }
    after=$(busy_seconds)
    sleep 0.2; safter=$(server_seconds)   # (the daemon reaps its last server)
    read -r e m u s < "$TIMES/$name"
    SEC[$name]=$e; RSS[$name]=$m; OWN[$name]=$own
    CPU[$name]=$(awk -v e="$e" -v u="$u" -v s="$s" 'BEGIN { printf "%.0f", (e > 0 ? (u + s) / e * 100 : 0) }')
    SERVER[$name]=$(awk -v e="$e" -v a="$sbefore" -v b="$safter" 'BEGIN { printf "%.0f", (e > 0 ? (b - a) / e * 100 : 0) }')
    # machine-wide busy time minus the command's own and the server's = what everything else used
    OTHER[$name]=$(awk -v e="$e" -v u="$u" -v s="$s" -v a="$before" -v b="$after" -v sa="$sbefore" -v sb="$safter" \
        'BEGIN { o = e > 0 ? (b - a - u - s - (sb - sa)) / e * 100 : 0; printf "%.0f", (o < 0 ? 0 : o) }')
    printf '%7.2f s  %6.1f MiB RSS  %4s%% CPU  server %3s%%  (others %s%%)\n' "$e" "$(awk -v m="$m" 'BEGIN { print m / 1024 }')" \
        "${CPU[$name]}" "${SERVER[$name]}" "${OTHER[$name]}" >&2
}

size_of() { stat -c %s "$1"; }
sum_sizes() { local t=0 f; for f in "$@"; do t=$((t + $(size_of "$f"))); done; echo "$t"; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a + b }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

# median_of NAME ROUNDS: SEC, CPU and OTHER of NAME are those of the median of NAME_1 ..
# NAME_ROUNDS (by wall time); RSS and OWN are the highest.
median_of() {
    local name=$1 n=$2 i line
    line=$(for ((i = 1; i <= n; i++)); do echo "${SEC[${name}_$i]} $i"; done | sort -n | awk '{ l[NR] = $2 } END { print l[int((NR + 1) / 2)] }')
    SEC[$name]=${SEC[${name}_$line]}; CPU[$name]=${CPU[${name}_$line]}; OTHER[$name]=${OTHER[${name}_$line]}
    SERVER[$name]=${SERVER[${name}_$line]}; RSS[$name]=0; OWN[$name]=0
    for ((i = 1; i <= n; i++)); do
        [ "${RSS[${name}_$i]}" -gt "${RSS[$name]}" ] && RSS[$name]=${RSS[${name}_$i]}
        [ "${OWN[${name}_$i]}" -gt "${OWN[$name]}" ] && OWN[$name]=${OWN[${name}_$i]}
    done
    for ((i = 1; i <= n; i++)); do unset "SEC[${name}_$i]" "OTHER[${name}_$i]"; done
}

write_spec() {   # write_spec VERSION
    {
        printf 'name: src\nversion: "%s"\ngit:\n' "$1"
        local r
        for r in "${REPOS[@]}"; do printf '  - url: %s\n    name: %s\n' "$(url "$r")" "$r"; done
    } > "$RUN/airlock.yaml"
}


# Do airlock's bundles carry the same refs as git's own (list-heads, sorted)? Are they
# even the same bytes?
same_refs() {   # same_refs AIRLOCK_BUNDLE_DIR SUFFIX -> "OK, identical", "OK" or the repositories that differ
    local dir=$1 suffix=$2 r bad=() same=1
    for r in "${REPOS[@]}"; do
        if ! cmp -s <(git bundle list-heads "$dir/$r.bundle" | sort) <(git bundle list-heads "$RUN/git/$r$suffix" | sort); then
            bad+=("$r")
        fi
        cmp -s "$dir/$r.bundle" "$RUN/git/$r$suffix" || same=0
    done
    if [ ${#bad[@]} -gt 0 ]; then echo "DIFFERENT: ${bad[*]}"
    elif [ "$same" = 1 ]; then echo "OK, identical"
    else echo OK; fi
}

json_field() {  # json_field FILE KEY: a top-level number from airlock --json output
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

run_benchmarks() {
    rm -rf "$RUN" "$TIMES" "$LOGS"
    mkdir -p "$RUN/git" "$TIMES" "$LOGS"
    export AIRLOCK_CONFIG_DIR=$BENCH_DIR/airlock-config AIRLOCK_CACHE_DIR=$RUN/cache AIRLOCK_STORE=$RUN/store
    [ -f "$AIRLOCK_CONFIG_DIR/keys/airlock.key" ] || "$AIRLOCK" key generate --no-password --trust > "$LOGS/key.out" 2>&1

    fresh_upstream
    start_daemon
    describe_upstream > "$RUN/upstream-before.txt"
    write_spec 1

    say "waiting for the machine to be idle before timing"
    wait_for_idle
    find "$UP" -type f -print0 | xargs -0 cat > /dev/null   # warm: upstream packs in the page cache

    # Full: from nothing to one bundle of every repository.
    say "full, airlock: mirror from an empty cache (ls-remote + fetch per repository), export --compression none"
    timed al_mirror "$AIRLOCK" --json mirror -f "$RUN/airlock.yaml"
    timed al_export "$AIRLOCK" --json export --lock "$RUN/airlock.lock" -o "$RUN/full" --compression none
    FULL=$(ls "$RUN"/full/*.airlock)

    say "full, git: clone --mirror, then bundle create --all, per repository"
    timed git_clone bash "$TOOLS/baseline.sh" clone "$RUN/git" "$PORT" "${REPOS[@]}"
    timed git_bundle bash "$TOOLS/baseline.sh" bundle "$RUN/git" "$PORT" "${REPOS[@]}"
    # for information: git does not fsync; airlock fsyncs its blobs and bundle
    /usr/bin/time -f '%e' -o "$TIMES/git_bundle_sync" sync; SEC[git_bundle_sync]=$(cat "$TIMES/git_bundle_sync")
    # airlock mirror fetches up to 8 repositories at once: the same with git, for comparison
    mkdir -p "$RUN/git-par"
    timed git_clone_par bash "$TOOLS/baseline.sh" clone-par "$RUN/git-par" "$PORT" "${REPOS[@]}"
    local r
    for r in "${REPOS[@]}"; do   # the tips the incremental bundle starts from
        git -C "$RUN/git/$r.git" for-each-ref --format='%(objectname)' | sort -u > "$RUN/git/$r.old"
    done
    GIT_BUNDLES=()
    for r in "${REPOS[@]}"; do GIT_BUNDLES+=("$RUN/git/$r.bundle"); done

    # Import: the full bundle into a fresh store, against git cloning the same git bundles.
    say "import: airlock import of the full bundle (fresh store) vs git clone --mirror from the bundles in it"
    python3 "$TOOLS/bundle_blobs.py" "$FULL" "$RUN/full-blobs" > "$RUN/full-blobs.txt"
    find "$RUN/full-blobs" "$FULL" -type f -print0 | xargs -0 cat > /dev/null
    local round rounds=${BENCH_ROUNDS:-${BENCH_REPEAT:-3}} clone_bundles='for r in "${@:3}"; do git clone --quiet --mirror "$1/$r.bundle" "$2/$r.git" || exit 1; done'
    for ((round = 1; round <= rounds; round++)); do
        echo "  round $round of $rounds" >&2
        rm -rf "$RUN/import-store"
        AIRLOCK_STORE=$RUN/import-store timed "al_import_$round" "$AIRLOCK" --json import "$FULL"
        if [ -n "${BENCH_BASELINE:-}" ]; then
            rm -rf "$RUN/import-store"
            AIRLOCK_STORE=$RUN/import-store timed "al_import_base_$round" "$BENCH_BASELINE" --json import "$FULL"
        fi
        rm -rf "$RUN/clone-bundles"; mkdir -p "$RUN/clone-bundles"
        timed "git_clone_bundles_$round" bash -c "$clone_bundles" _ "$RUN/full-blobs" "$RUN/clone-bundles" "${REPOS[@]}"
    done
    median_of al_import "$rounds"
    median_of git_clone_bundles "$rounds"
    [ -z "${BENCH_BASELINE:-}" ] || median_of al_import_base "$rounds"

    # Incremental: upstream moves on; carry only what is new.
    say "upstream moves on: $UPDATE_COMMITS commits on main, 2 on the newest stable branch, 2 tags, per repository"
    update_upstream
    describe_upstream > "$RUN/upstream-after.txt"
    find "$UP" -type f -newer "$RUN/upstream-before.txt" -print0 | xargs -0 cat > /dev/null
    write_spec 2

    say "incremental, airlock: mirror, export --since the full bundle"
    timed al_mirror_inc "$AIRLOCK" --json mirror -f "$RUN/airlock.yaml"
    timed al_export_inc "$AIRLOCK" --json export --lock "$RUN/airlock.lock" -o "$RUN/inc" --compression none --since "$FULL"
    INC=$(ls "$RUN"/inc/*.airlock)

    say "incremental, git: fetch --prune in the mirrors, bundle create --all ^<old tips>"
    timed git_fetch bash "$TOOLS/baseline.sh" fetch "$RUN/git" "$PORT" "${REPOS[@]}"
    timed git_fetch_par bash "$TOOLS/baseline.sh" fetch-par "$RUN/git-par" "$PORT" "${REPOS[@]}"
    timed git_bundle_inc bash "$TOOLS/baseline.sh" bundle-inc "$RUN/git" "$PORT" "${REPOS[@]}"
    GIT_INC=()
    for r in "${REPOS[@]}"; do GIT_INC+=("$RUN/git/$r.inc.bundle"); done

    say "checks: airlock's git bundles carry the same refs as git's own"
    python3 "$TOOLS/bundle_blobs.py" "$INC" "$RUN/inc-blobs" > "$RUN/inc-blobs.txt"
    REFS_FULL=$(same_refs "$RUN/full-blobs" .bundle)
    REFS_INC=$(same_refs "$RUN/inc-blobs" .inc.bundle)
    echo "  full: $REFS_FULL; incremental: $REFS_INC" >&2

    # Sizes.
    FULL_BYTES=$(size_of "$FULL");            INC_BYTES=$(size_of "$INC")
    FULL_BLOBS=$(json_field "$LOGS/al_export.out" blobBytes)
    INC_BLOBS=$(json_field "$LOGS/al_export_inc.out" blobBytes)
    GIT_FULL_BYTES=$(sum_sizes "${GIT_BUNDLES[@]}")
    GIT_INC_BYTES=$(sum_sizes "${GIT_INC[@]}")
}

# --- 5. summary ----------------------------------------------------------------------------

report() {
    local s=$BENCH_DIR/summary.txt
    {
        local commits refs packs
        read -r commits refs packs < <(awk '{ c += $2; r += $3; p += $4 } END { printf "%d %d %d\n", c, r, p }' "$RUN/upstream-before.txt")
        printf 'airlock git benchmark: %d repositories, %d commits, %d refs, %.1f MiB of packs upstream (git daemon, loopback)\n' \
            "${#REPOS[@]}" "$commits" "$refs" "$(awk -v p="$packs" 'BEGIN { print p / 2^20 }')"
        printf '%s, %s, %d cores; page cache WARM; incremental: +%d commits on main, +2 on a stable branch, +2 tags per repository\n' \
            "$("$AIRLOCK" --version)" "$(git --version)" "$(nproc)" "$UPDATE_COMMITS"
        echo "CPU% is the step's own CPU (200 = both cores); server% the git daemon's (upload-pack, pack-objects);"
        echo "other% what other processes used meanwhile (write-back of the step's own writes counts there too)."
        echo "RSS is the largest single process of the step (git children included); airlock's own is listed below."
        echo
        printf '%-46s %8s %8s %6s %7s %6s %14s\n' step "wall s" "RSS MiB" CPU% server% other% "output bytes"
        row() {   # row LABEL NAME [BYTES]
            awk -v l="$1" -v e="${SEC[$2]}" -v m="${RSS[$2]}" -v c="${CPU[$2]}" -v v="${SERVER[$2]}" -v x="${OTHER[$2]}" -v o="${3:-}" \
                'BEGIN { printf "%-46s %8.2f %8.1f %6s %7s %6s %14s\n", l, e, m / 1024, c, v, x, o }'
        }
        sumrow() { printf '%-46s %8.2f\n' "$1" "$2"; }
        echo "full (empty cache -> one bundle of every repository)"
        row "  airlock mirror" al_mirror
        row "  airlock export --compression none" al_export "$FULL_BYTES"
        sumrow "  airlock mirror + export" "$(add "${SEC[al_mirror]}" "${SEC[al_export]}")"
        row "  git clone --mirror (${#REPOS[@]} repos)" git_clone
        row "  git bundle create --all (${#REPOS[@]} repos)" git_bundle "$GIT_FULL_BYTES"
        sumrow "  git clone + bundle" "$(add "${SEC[git_clone]}" "${SEC[git_bundle]}")"
        row "  git clone --mirror, all repos at once" git_clone_par
        sumrow "  (sync of git's bundles afterwards, info)" "${SEC[git_bundle_sync]}"
        echo "import of the full bundle (median of ${BENCH_ROUNDS:-${BENCH_REPEAT:-3}} rounds)"
        row "  airlock import (fresh store)" al_import
        [ -z "${SEC[al_import_base]:-}" ] || row "  baseline airlock import (BENCH_BASELINE)" al_import_base
        row "  git clone --mirror from the bundles in it" git_clone_bundles
        echo "incremental (after upstream moved on)"
        row "  airlock mirror" al_mirror_inc
        row "  airlock export --since <full bundle>" al_export_inc "$INC_BYTES"
        sumrow "  airlock mirror + export" "$(add "${SEC[al_mirror_inc]}" "${SEC[al_export_inc]}")"
        row "  git fetch --prune (${#REPOS[@]} mirrors)" git_fetch
        row "  git bundle create --all ^<old tips>" git_bundle_inc "$GIT_INC_BYTES"
        sumrow "  git fetch + bundle" "$(add "${SEC[git_fetch]}" "${SEC[git_bundle_inc]}")"
        row "  git fetch --prune, all mirrors at once" git_fetch_par
        echo

        echo "ratios: baseline time / airlock time (> 1: airlock is faster)"
        ratiorow() { printf '  %-52s %8s\n' "$1" "$2"; }
        ratiorow "full: clone --mirror / airlock mirror" "$(ratio "${SEC[git_clone]}" "${SEC[al_mirror]}")"
        ratiorow "full: clone --mirror all at once / airlock mirror" "$(ratio "${SEC[git_clone_par]}" "${SEC[al_mirror]}")"
        ratiorow "full: bundle create / airlock export" "$(ratio "${SEC[git_bundle]}" "${SEC[al_export]}")"
        ratiorow "full: clone + bundle / airlock mirror + export" \
            "$(ratio "$(add "${SEC[git_clone]}" "${SEC[git_bundle]}")" "$(add "${SEC[al_mirror]}" "${SEC[al_export]}")")"
        ratiorow "import: clone --mirror from the bundles / airlock import (target >= 1.0)" "$(ratio "${SEC[git_clone_bundles]}" "${SEC[al_import]}")"
        [ -z "${SEC[al_import_base]:-}" ] || ratiorow "import: baseline airlock import / airlock import" "$(ratio "${SEC[al_import_base]}" "${SEC[al_import]}")"
        ratiorow "incremental: fetch / airlock mirror" "$(ratio "${SEC[git_fetch]}" "${SEC[al_mirror_inc]}")"
        ratiorow "incremental: fetch all at once / airlock mirror" "$(ratio "${SEC[git_fetch_par]}" "${SEC[al_mirror_inc]}")"
        ratiorow "incremental: bundle create ^old / airlock export --since" "$(ratio "${SEC[git_bundle_inc]}" "${SEC[al_export_inc]}")"
        ratiorow "incremental: fetch + bundle / airlock mirror + export" \
            "$(ratio "$(add "${SEC[git_fetch]}" "${SEC[git_bundle_inc]}")" "$(add "${SEC[al_mirror_inc]}" "${SEC[al_export_inc]}")")"
        echo

        echo "sizes"
        sizerow() { printf '  %-52s %14s\n' "$1" "$2"; }
        sizerow "full .airlock file, bytes" "$FULL_BYTES"
        sizerow "  git bundles inside it, bytes" "$FULL_BLOBS"
        sizerow "git's own full bundles, bytes" "$GIT_FULL_BYTES"
        sizerow "airlock bundles / git's bundles (full)" "$(ratio "$FULL_BLOBS" "$GIT_FULL_BYTES")"
        sizerow "incremental .airlock file, bytes" "$INC_BYTES"
        sizerow "  git bundles inside it, bytes" "$INC_BLOBS"
        sizerow "git's own incremental bundles, bytes" "$GIT_INC_BYTES"
        sizerow "incremental / full (.airlock files)" "$(ratio "$INC_BYTES" "$FULL_BYTES")"
        sizerow "incremental / full (git bundles inside)" "$(ratio "$INC_BLOBS" "$FULL_BLOBS")"
        sizerow "airlock incremental bundles / git's incremental" "$(ratio "$INC_BLOBS" "$GIT_INC_BYTES")"
        sizerow "refs carried = git's own? (full / incremental)" "$REFS_FULL / $REFS_INC"
        echo

        echo "per repository (bytes)"
        printf '  %-10s %8s %5s %12s %12s %12s %10s %10s\n' repo commits refs "upstream pk" "airlock full" "git full" "airl. inc" "git inc"
        local name c rf p
        while read -r name c rf p; do
            printf '  %-10s %8s %5s %12s %12s %12s %10s %10s\n' "$name" "$c" "$rf" "$p" \
                "$(awk -v n="$name" '$1 == n { print $2 }' "$RUN/full-blobs.txt")" "$(size_of "$RUN/git/$name.bundle")" \
                "$(awk -v n="$name" '$1 == n { print $2 }' "$RUN/inc-blobs.txt")" "$(size_of "$RUN/git/$name.inc.bundle")"
        done < "$RUN/upstream-before.txt"
        echo

        echo "peak RSS of airlock, MiB (the airlock process itself / largest process of the step, git included)"
        local n
        for n in al_mirror al_export al_import al_mirror_inc al_export_inc; do
            printf '  %-20s %8.1f / %8.1f\n' "$n" "$(awk -v m="${OWN[$n]}" 'BEGIN { print m / 1024 }')" \
                "$(awk -v m="${RSS[$n]}" 'BEGIN { print m / 1024 }')"
        done
        echo

        echo "where the time goes (GIT_TRACE2_EVENT of every git process): per step, the git processes' seconds summed,"
        echo "the wall time with at least one git process running, and the wall time with none (airlock itself, or the shell)"
        for n in al_mirror git_clone git_clone_par al_export git_bundle al_mirror_inc git_fetch git_fetch_par al_export_inc git_bundle_inc; do
            [ -s "$LOGS/$n.trace2" ] || continue
            python3 "$TOOLS/trace2.py" "$LOGS/$n.trace2" > "$LOGS/$n.trace2.txt"
            awk -v n="$n" -v w="${SEC[$n]}" 'NR == 1 { o = w - $2; if (o < 0) o = 0
                                                         printf "  %s: %.2f s wall; git: %.2f s summed, %.2f s of wall (up to %d at once); no git running: %.2f s\n", n, w, $1, $2, $3, o; next }
                                              { print "      " $0 }' "$LOGS/$n.trace2.txt"
        done
        local busiest=0
        for n in "${!OTHER[@]}"; do [ "${OTHER[$n]}" -gt "$busiest" ] && busiest=${OTHER[$n]}; done
        [ "$busiest" -lt 10 ] || echo "WARNING: other processes used up to ${busiest}% of a core during a step (write-back of the step's own writes counts too); check other%"
    } | tee "$s"
    echo "(saved to $s; per-step logs and traces in $LOGS)" >&2
}

main() {
    check_tools
    lock_bench_dir
    build
    check_space
    isolate_git
    write_tools
    generate_upstreams
    trap stop_daemon EXIT
    run_benchmarks
    stop_daemon
    say "summary"
    report
}

main "$@"
