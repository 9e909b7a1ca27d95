"""A stand-in for a Nexus apt-hosted repository, for airlock's tests (no Nexus runs here).

Like Nexus: one distribution per repository; `POST /repository/<name>/` with a .deb as the
request body (Basic auth required) adds it to the pool and to the indexes; GET serves
`dists/<dist>/main/binary-<arch>/Packages` (arch:all packages listed in every
architecture's index and in binary-all) and `pool/...`. Re-uploading a package with the
same name, version and architecture replaces it, as Nexus does by default, which is why
airlock refuses conflicts itself. Each accepted upload is counted in `uploads.log`.

usage: apt_hosted.py ROOT DIST USER PASSWORD
"""

import base64, hashlib, http.server, os, subprocess, sys, tempfile

ROOT, DIST, USER, PASSWORD = sys.argv[1:5]
PREFIX = "/repository/apt-hosted/"
packages = {}  # (name, version, arch) -> stanza


def control(path):
    out = subprocess.run(["dpkg-deb", "-f", path], check=True, capture_output=True, text=True).stdout
    fields, last = {}, None
    for line in out.splitlines():
        if line.startswith((" ", "\t")) and last:
            fields[last] += "\n" + line
        elif ":" in line:
            last, v = line.split(":", 1)
            fields[last] = v.strip()
    return out.rstrip("\n"), fields


def rebuild():
    arches = {k[2] for k in packages} | {"all"}
    for arch in arches:
        d = os.path.join(ROOT, "dists", DIST, "main", "binary-" + arch)
        os.makedirs(d, exist_ok=True)
        text = "\n".join(s for k, s in sorted(packages.items()) if k[2] in (arch, "all"))
        with open(os.path.join(d, "Packages"), "w") as f:
            f.write(text)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        if not self.path.startswith(PREFIX):
            return self.send_error(404)
        p = os.path.normpath(os.path.join(ROOT, self.path[len(PREFIX):]))
        if not p.startswith(ROOT) or not os.path.isfile(p):
            return self.send_error(404)
        body = open(p, "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.headers.get("Authorization") != want:
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path != PREFIX:
            return self.send_error(404)
        n = int(self.headers["Content-Length"])
        data = self.rfile.read(n)
        with tempfile.NamedTemporaryFile(suffix=".deb", dir=ROOT) as t:
            t.write(data)
            t.flush()
            try:
                text, f = control(t.name)
            except subprocess.CalledProcessError:
                return self.send_error(400, "not a Debian package")
        key = (f["Package"], f["Version"], f["Architecture"])
        pool = f"pool/{key[0][0]}/{key[0]}/{key[0]}_{key[1]}_{key[2]}.deb"
        os.makedirs(os.path.dirname(os.path.join(ROOT, pool)), exist_ok=True)
        with open(os.path.join(ROOT, pool), "wb") as out:
            out.write(data)
        packages[key] = text + f"\nFilename: {pool}\nSize: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        rebuild()
        with open(os.path.join(ROOT, "..", "uploads.log"), "a") as log:
            log.write(" ".join(key) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


os.makedirs(ROOT, exist_ok=True)
http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler).serve_forever()
