#!/usr/bin/env python3
"""Run a command in a guest kernel that routes multicast, for a host whose kernel cannot.

    python3 lab/guest.py python3 lab/pimlab.py      # the PIM lesson, in a guest

It boots Debian's stock kernel (the package linux-image-amd64, from this machine's
own Debian or Ubuntu package sources, kept in ~/.cache/multicast-kit) with
virtme-ng under QEMU: the guest sees this machine's files (read-only, with
writable /tmp, /etc and /var), runs the command as root in this folder, prints
its output and powers off; the exit status is the command's. KVM where it works,
else QEMU's software emulation (TCG), decided by trying.

Needs, on the host: QEMU (qemu-system-x86), a static busybox, kmod and udev, virtme-ng
(`pip install virtme-ng`, its `vng` on PATH or in MULTICAST_GUEST_VENV/bin), and
what the command uses (for the PIM lab: FRR, iproute2). x86-64 only.
"""

import glob
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile

CACHE = os.environ.get("MULTICAST_GUEST_CACHE") or os.path.join(
    os.path.expanduser("~"), ".cache", "multicast-kit")
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Drivers the guest never needs; udev waits for each: 8 s of settling instead of 1.5.
BLACKLIST = "modprobe.blacklist=kvm,kvm_intel,kvm_amd,ata_piix,ata_generic,pata_acpi,floppy"


class GuestError(Exception):
    """The guest cannot be made or started here; the message says why."""


def kernel_image():
    """The guest's kernel, fetched into the cache the first time."""
    images = sorted(glob.glob(os.path.join(CACHE, "kernel", "boot", "vmlinuz-*")))
    if images:
        return images[-1]
    package = subprocess.run(["apt-cache", "depends", "linux-image-amd64"],
                             capture_output=True, text=True)
    names = [line.split()[-1] for line in package.stdout.splitlines()
             if line.strip().startswith("Depends: linux-image-")]
    if not names:
        raise GuestError("no linux-image-amd64 in this machine's package sources "
                         "(apt-cache depends linux-image-amd64)")
    folder = tempfile.mkdtemp(prefix="kernel-", dir=CACHE if os.path.isdir(CACHE) else None)
    try:
        got = subprocess.run(["apt-get", "download", names[0]], cwd=folder,
                             capture_output=True, text=True)
        debs = glob.glob(os.path.join(folder, "*.deb"))
        if got.returncode != 0 or not debs:
            raise GuestError(f"apt-get download {names[0]} failed: {got.stderr.strip()}")
        os.makedirs(CACHE, exist_ok=True)
        unpacked = os.path.join(CACHE, "kernel")
        if subprocess.run(["dpkg-deb", "-x", debs[0], unpacked]).returncode != 0:
            raise GuestError(f"dpkg-deb could not unpack {debs[0]}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return sorted(glob.glob(os.path.join(CACHE, "kernel", "boot", "vmlinuz-*")))[-1]


def vng_command():
    """The argv of virtme-ng, and the PATH it needs (it calls its own helpers)."""
    venv = os.environ.get("MULTICAST_GUEST_VENV")
    path = os.environ.get("PATH", "")
    if venv:
        path = os.path.join(venv, "bin") + os.pathsep + path
    vng = shutil.which("vng", path=path)
    if vng is None:
        raise GuestError("virtme-ng is not installed (pip install virtme-ng; or set "
                         "MULTICAST_GUEST_VENV to the virtual environment that has it)")
    for tool in ("qemu-system-x86_64", "busybox", "udevadm", "depmod"):
        if shutil.which(tool, path=path) is None:
            raise GuestError(f"'{tool}' is not installed (Debian: qemu-system-x86, "
                             "busybox-static, udev, kmod)")
    return vng, path


def boot(command, kvm, timeout=None, capture=False, cwd=None):
    """Boot the guest, run command (a shell line) in it, in the folder cwd (this one
    unless given); return the CompletedProcess."""
    vng, path = vng_command()
    argv = [vng, "--run", kernel_image(), "--force-9p", "--memory", "512M", "--cpus", "2",
            "--cwd", cwd or os.getcwd(), "--append", BLACKLIST, "--exec", command]
    if not kvm:
        argv.insert(1, "--disable-kvm")
    # QEMU's output goes through a pipe: given a regular file, QEMU writes over it. A
    # session of its own: on a timeout QEMU goes too, not only virtme-ng.
    process = subprocess.Popen(argv, env={**os.environ, "PATH": path},
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT if capture else None, text=True,
                               start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(argv, process.returncode, output)


def kvm_works():
    """Whether a guest boots under KVM here (on some hosts it hangs at boot)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        probe = boot("echo guest-up", kvm=True, timeout=30, capture=True)
    except subprocess.TimeoutExpired:
        return False
    return probe.returncode == 0 and "guest-up" in probe.stdout


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    if os.geteuid() != 0:
        print("guest.py: run it as root (the guest's command runs as root; its lab "
              "makes network namespaces)", file=sys.stderr)
        return 2
    try:
        kvm = kvm_works()
        result = boot(shlex.join(argv), kvm=kvm)
    except GuestError as error:
        print(f"guest.py: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(result.stdout)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
