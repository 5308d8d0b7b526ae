"""Machines of a classroom on one Linux host: network namespaces on one bridge
(netlab.Lab), each with a Docker engine of its own and a host name of its own.

    with EngineLab(["node-a", "node-b"]) as lab:
        lab.docker(0, "run", "--rm", "--network", "host", "multicast-demo", ...)

Each engine is a dockerd started with `nsenter --net` into its namespace (not
`ip netns exec`, which remounts /sys and hides the cgroups from dockerd) and
`unshare --uts` for its host name; it has no bridge and leaves iptables alone
(--bridge=none --iptables=false), so its containers live on the host network
of their "machine" or on none. Its files are under a folder of its own, which
close() unmounts and removes, with the engines stopped first, whatever state
they are in.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

from . import netlab, support


class EngineLab:
    def __init__(self, names, image=None):
        for tool in ("dockerd", "docker", "nsenter", "unshare"):
            if shutil.which(tool) is None:
                raise netlab.LabError(f"'{tool}' is not installed")
        if os.geteuid() != 0:
            raise netlab.LabError("a Docker engine per namespace needs root")
        self.names = list(names)
        self.folder = tempfile.mkdtemp(prefix="mcengines")
        self.engines = []  # the dockerd processes
        self.lab = netlab.Lab(hosts=len(self.names))
        try:
            for index, name in enumerate(self.names):
                self.engines.append(self._start(index, name))
            for index in range(len(self.names)):
                if not support.wait_until(lambda: self.docker(index, "info").returncode == 0,
                                          60, interval=0.2):
                    raise netlab.LabError(f"the engine of {self.names[index]} did not start: "
                                          + self.log(index)[-800:])
            if image is not None:
                self.load(image)
        except BaseException:
            self.close()
            raise

    def path(self, index, leaf):
        return os.path.join(self.folder, self.names[index], leaf)

    def _start(self, index, name):
        os.makedirs(self.path(index, "data"))
        os.makedirs(self.path(index, "exec"))
        netns = f"/var/run/netns/{self.lab.namespace(index)}"
        dockerd = ["dockerd", "--data-root", self.path(index, "data"),
                   "--exec-root", self.path(index, "exec"),
                   "--pidfile", self.path(index, "dockerd.pid"),
                   "-H", f"unix://{self.path(index, 'docker.sock')}",
                   "--bridge=none", "--iptables=false", "--ip6tables=false"]
        log = open(self.path(index, "dockerd.log"), "w")
        try:
            return subprocess.Popen(
                ["unshare", "--uts", "sh", "-c",
                 f'hostname "$0" && exec nsenter --net={netns} "$@"', name, *dockerd],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            log.close()

    def log(self, index):
        with open(self.path(index, "dockerd.log"), errors="replace") as stream:
            return stream.read()

    def docker(self, index, *argv, timeout=120, **kwargs):
        """Run `docker` against machine index's engine."""
        return subprocess.run(["docker", "-H", f"unix://{self.path(index, 'docker.sock')}",
                               *argv], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, **kwargs)

    def env(self, index):
        """The environment that points docker and Compose at machine index's engine."""
        return {**os.environ, "DOCKER_HOST": f"unix://{self.path(index, 'docker.sock')}"}

    def load(self, image):
        """Copy an image of this host's own engine into every machine's engine."""
        archive = os.path.join(self.folder, "image.tar")
        saved = subprocess.run(["docker", "save", "-o", archive, image], capture_output=True,
                               text=True, timeout=300)
        if saved.returncode != 0:
            raise netlab.LabError(f"docker save {image}: {saved.stderr.strip()}")
        for index in range(len(self.names)):
            loaded = self.docker(index, "load", "-i", archive, timeout=300)
            if loaded.returncode != 0:
                raise netlab.LabError(f"docker load on {self.names[index]}: "
                                      f"{loaded.stderr.strip()}")

    def close(self):
        """Leave the swarm, stop every engine, unmount and remove its files, and the
        namespaces: whatever state things are in."""
        for index, engine in enumerate(self.engines):
            if engine.poll() is None:
                self.docker(index, "swarm", "leave", "--force", timeout=60)
                containers = self.docker(index, "ps", "-aq", timeout=60).stdout.split()
                if containers:
                    self.docker(index, "rm", "-f", *containers, timeout=120)
        for engine in self.engines:
            if engine.poll() is None:
                os.killpg(engine.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for engine in self.engines:
            try:
                engine.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(engine.pid, signal.SIGKILL)
                engine.wait(10)
        self.engines = []
        # Whatever dockerd and containerd left mounted under the folder, deepest first.
        with open("/proc/self/mounts") as mounts:
            points = [line.split()[1] for line in mounts if f" {self.folder}/" in line]
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.lab.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def probe():
    """None if two engines can run here, else the reason why not."""
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        return "no Docker engine installed (apt-get install docker.io)"
    if os.geteuid() != 0:
        return "a Docker engine per namespace needs root"
    return netlab.probe()
