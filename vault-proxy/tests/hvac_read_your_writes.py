"""Read-your-writes through vault-aws proxy, as an application using hvac does.

Run by tests/openbao.rs (`read_your_writes_with_hvac`) with the peers' client
venv (`scripts/install-peers` installs hvac there):

    python hvac_read_your_writes.py http://127.0.0.1:PORT

The proxy caches every GET (VAULT_DEFAULT_CACHE_ENABLED=true) with a long TTL,
so a read that returns an old value after a write through the same proxy is
the cache hiding the write. Every step reads twice (the second read is served
from the cache) and checks the value. Exits non-zero naming the first step
whose read did not see the write.
"""

import sys

import hvac
from hvac.exceptions import InvalidPath

URL = sys.argv[1]
STEP = ["start"]


def step(name):
    STEP[0] = name
    print("step:", name, flush=True)


def check(what, got, want):
    if got != want:
        sys.exit(f"FAIL at step {STEP[0]!r}: {what}: got {got!r}, want {want!r}")


def client(**kw):
    # The proxy replaces the token with its own; hvac sends X-Vault-Request: true.
    return hvac.Client(url=URL, token="replaced-by-the-proxy", **kw)


def kv2_value(c, path, mount="secret", version=None):
    """The password of `path`, or None when it is deleted or missing."""
    try:
        r = c.secrets.kv.v2.read_secret_version(
            path=path, mount_point=mount, version=version, raise_on_deleted_version=True
        )
    except InvalidPath:
        return None
    return r["data"]["data"]["password"]


def read_twice(what, read, want):
    for n in (1, 2):
        check(f"{what} (read {n})", read(), want)


def kv2_keys(c, folder, mount="secret"):
    try:
        return sorted(c.secrets.kv.v2.list_secrets(path=folder, mount_point=mount)["data"]["keys"])
    except InvalidPath:
        return []


def kv2(c, strict, mount="secret", other=None):
    """write -> read -> write -> read -> delete -> read on KV v2, every form.

    `other` reads the same secrets another way (namespace header vs path prefix).
    """
    readers = [c] + ([other] if other else [])
    omount = other_mount(mount) if other else None

    def reads(label, path, want, version=None):
        read_twice(f"{label} via {mount}", lambda: kv2_value(c, path, mount, version), want)
        if other:
            read_twice(f"{label} via {omount}", lambda: kv2_value(other, path, omount, version), want)

    def lists(label, folder, want):
        read_twice(f"{label} list via {mount}", lambda: kv2_keys(c, folder, mount), want)
        if other:
            read_twice(f"{label} list via {omount}", lambda: kv2_keys(other, folder, omount), want)

    step(f"kv2 {mount}: first write")
    c.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": "p1"}, mount_point=mount)
    reads("after first write", "app/db", "p1")
    lists("after first write", "app/", ["db"])

    step(f"kv2 {mount}: second write")
    c.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": "p2"}, mount_point=mount)
    reads("after second write", "app/db", "p2")
    reads("version 1 after second write", "app/db", "p1", version=1)
    read_twice(
        "current_version in metadata",
        lambda: c.secrets.kv.v2.read_secret_metadata(path="app/db", mount_point=mount)["data"]["current_version"],
        2,
    )

    step(f"kv2 {mount}: patch")
    c.secrets.kv.v2.patch(path="app/db", secret={"password": "p3"}, mount_point=mount)
    reads("after patch", "app/db", "p3")

    step(f"kv2 {mount}: a new key in the folder")
    c.secrets.kv.v2.create_or_update_secret(path="app/cache", secret={"password": "c1"}, mount_point=mount)
    lists("after a second key", "app/", ["cache", "db"])

    step(f"kv2 {mount}: delete latest version")
    c.secrets.kv.v2.delete_latest_version_of_secret(path="app/db", mount_point=mount)
    reads("after delete", "app/db", None)

    step(f"kv2 {mount}: undelete")
    c.secrets.kv.v2.undelete_secret_versions(path="app/db", versions=[3], mount_point=mount)
    reads("after undelete", "app/db", "p3")

    step(f"kv2 {mount}: delete version 1")
    c.secrets.kv.v2.delete_secret_versions(path="app/db", versions=[1], mount_point=mount)
    reads("version 1 after delete", "app/db", None, version=1)

    step(f"kv2 {mount}: destroy version 2")
    reads("version 2 before destroy", "app/db", "p2", version=2)
    c.secrets.kv.v2.destroy_secret_versions(path="app/db", versions=[2], mount_point=mount)
    reads("version 2 after destroy", "app/db", None, version=2)

    step(f"kv2 {mount}: metadata update")
    c.secrets.kv.v2.update_metadata(path="app/db", custom_metadata={"owner": "team-a"}, mount_point=mount)
    read_twice(
        "custom_metadata",
        lambda: c.secrets.kv.v2.read_secret_metadata(path="app/db", mount_point=mount)["data"]["custom_metadata"],
        {"owner": "team-a"},
    )

    step(f"kv2 {mount}: delete metadata and all versions")
    c.secrets.kv.v2.delete_metadata_and_all_versions(path="app/db", mount_point=mount)
    reads("after deleting all versions", "app/db", None)
    reads("version 3 after deleting all versions", "app/db", None, version=3)
    lists("after deleting all versions", "app/", ["cache"])

    step(f"kv2 {mount}: write again after delete")
    c.secrets.kv.v2.create_or_update_secret(path="app/db", secret={"password": "p4"}, mount_point=mount)
    reads("after writing again", "app/db", "p4")
    lists("after writing again", "app/", ["cache", "db"])
    if strict:
        # strict_http lists are GET ?list=true, the cacheable form.
        read_twice("keys of the folder", lambda: kv2_keys(c, "app/", mount), ["cache", "db"])


def other_mount(mount):
    # "team/secret" (path prefix) <-> "secret" (X-Vault-Namespace: team)
    return mount.split("/", 1)[1] if "/" in mount else "team/" + mount


def kv1(c):
    def value():
        try:
            return c.secrets.kv.v1.read_secret(path="app/db", mount_point="kv1")["data"]["password"]
        except InvalidPath:
            return None

    step("kv1: write, read, write, read, delete, read")
    c.secrets.kv.v1.create_or_update_secret(path="app/db", secret={"password": "v1"}, mount_point="kv1")
    read_twice("kv1 after first write", value, "v1")
    c.secrets.kv.v1.create_or_update_secret(path="app/db", secret={"password": "v2"}, mount_point="kv1")
    read_twice("kv1 after second write", value, "v2")
    c.secrets.kv.v1.delete_secret(path="app/db", mount_point="kv1")
    read_twice("kv1 after delete", value, None)


def main():
    root = client(strict_http=True)
    kv2(root, strict=True)
    kv1(client())
    # Namespace `team`: written with X-Vault-Namespace and read both ways,
    # then written through the path prefix and read both ways.
    by_header = client(namespace="team")
    by_prefix = client(strict_http=True)
    kv2(by_header, strict=False, mount="secret", other=by_prefix)
    by_prefix.secrets.kv.v2.delete_metadata_and_all_versions(path="app/cache", mount_point="team/secret")
    by_prefix.secrets.kv.v2.delete_metadata_and_all_versions(path="app/db", mount_point="team/secret")
    kv2(by_prefix, strict=True, mount="team/secret", other=by_header)
    print("ok: every read saw the write before it", flush=True)


if __name__ == "__main__":
    main()
