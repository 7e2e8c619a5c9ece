"""Crashes in the middle of storage work: `kill -9` of `strata up` during an image upload and
during a volume-from-image copy. After a restart every record is in a final state (the image
`killed`, the volume `error`), no temp or orphan file is left, and the space is accounted."""

from __future__ import annotations

import os
import signal
import threading

import requests

from harness import HTTP_TIMEOUT_S, Api, StrataServer, poll

MIB = 1 << 20


def files(d) -> list[str]:
    if not d.exists():
        return []
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


class Cloud:
    """Raw HTTP to the image and volume APIs as the admin of a server."""

    def __init__(self, server: StrataServer):
        self.server = server
        self.refresh()

    def refresh(self):
        api = Api(self.server)
        self.token = api.cloud_token("strata")
        r = api.request("GET", "/auth/tokens", self.token,
                        headers={"X-Subject-Token": self.token})
        self.project = r.json()["token"]["project"]["id"]

    def url(self, path: str) -> str:
        return self.server.base_url + path

    def req(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"X-Auth-Token": self.token, **kw.pop("headers", {})}
        kw.setdefault("timeout", HTTP_TIMEOUT_S)
        return requests.request(method, self.url(path), headers=headers, **kw)

    def image(self, image_id: str) -> dict:
        r = self.req("GET", f"/image/v2/images/{image_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def volume(self, vol_id: str) -> dict:
        r = self.req("GET", f"/volume/v3/{self.project}/volumes/{vol_id}")
        assert r.status_code == 200, r.text
        return r.json()["volume"]


def test_kill_9_during_an_image_upload(tmp_path):
    s = StrataServer(tmp_path / "data")
    try:
        s.start()
        c = Cloud(s)
        r = c.req("POST", "/image/v2/images",
                  json={"name": "cut", "disk_format": "raw", "container_format": "bare"})
        assert r.status_code == 201, r.text
        iid = r.json()["id"]

        release = threading.Event()

        def body():
            for _ in range(4):
                yield os.urandom(MIB)
            # Hold the upload open until the server is gone.
            release.wait(60)

        def upload():
            try:
                c.req("PUT", f"/image/v2/images/{iid}/file", data=body(),
                      headers={"Content-Type": "application/octet-stream"}, timeout=60)
            except requests.RequestException:
                pass

        t = threading.Thread(target=upload, daemon=True)
        t.start()
        poll(lambda: c.image(iid)["status"] == "saving", 30, "the upload to start")
        # Data is on its way to disk in a temp file.
        images = s.data_dir / "images"
        poll(lambda: files(images), 30, "a temp file of the upload")
        s.stop(signal.SIGKILL)
        release.set()
        t.join(30)

        s.start()
        c.refresh()
        shown = c.image(iid)
        assert shown["status"] == "killed", shown
        assert shown["size"] is None and shown["checksum"] is None, shown
        assert files(images) == [], files(images)
        # A killed image can be deleted.
        assert c.req("DELETE", f"/image/v2/images/{iid}").status_code == 204
        assert s.stop(signal.SIGTERM) == 0, s.logs()
    finally:
        s.kill()


def test_kill_9_during_a_volume_from_image_copy(tmp_path):
    # Copies are paced (Cinder's volume_copy_bps_limit) so the crash lands mid-copy.
    s = StrataServer(tmp_path / "data", env={"STRATA_VOLUME__COPY_BPS_LIMIT": str(2 * MIB)})
    try:
        s.start()
        c = Cloud(s)
        r = c.req("POST", "/image/v2/images",
                  json={"name": "src", "disk_format": "raw", "container_format": "bare"})
        iid = r.json()["id"]
        r = c.req("PUT", f"/image/v2/images/{iid}/file", data=os.urandom(24 * MIB),
                  headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 204, r.text
        # A finished volume before the crash must survive it untouched.
        r = c.req("POST", f"/volume/v3/{c.project}/volumes",
                  json={"volume": {"size": 1, "name": "keep"}})
        assert r.status_code == 202, r.text
        keep = r.json()["volume"]["id"]
        poll(lambda: c.volume(keep)["status"] == "available", 30, "the blank volume")

        r = c.req("POST", f"/volume/v3/{c.project}/volumes",
                  json={"volume": {"size": 1, "name": "cut", "imageRef": iid}})
        assert r.status_code == 202, r.text
        vid = r.json()["volume"]["id"]
        volumes = s.data_dir / "volumes"
        # Mid-copy: downloading, with a partial temp file on disk.
        poll(lambda: c.volume(vid)["status"] == "downloading"
             and any(f.endswith(".tmp") for f in files(volumes)), 30, "the copy to start")
        s.stop(signal.SIGKILL)

        s.start()
        c.refresh()
        assert c.volume(vid)["status"] == "error"
        assert c.volume(keep)["status"] == "available"
        left = files(volumes)
        assert len(left) == 1 and not left[0].endswith(".tmp"), left
        # Space is accounted: the quota usage counts both rows until the errored one is
        # deleted, and deleting it frees the quota and leaves only the kept volume's file.
        r = c.req("GET", f"/volume/v3/{c.project}/os-quota-sets/{c.project}?usage=true")
        assert r.status_code == 200, r.text
        assert r.json()["quota_set"]["volumes"]["in_use"] == 2, r.json()
        assert c.req("DELETE", f"/volume/v3/{c.project}/volumes/{vid}").status_code == 202
        poll(lambda: c.req("GET", f"/volume/v3/{c.project}/volumes/{vid}").status_code == 404,
             30, "the errored volume to go")
        r = c.req("GET", f"/volume/v3/{c.project}/os-quota-sets/{c.project}?usage=true")
        assert r.json()["quota_set"]["volumes"]["in_use"] == 1, r.json()
        assert r.json()["quota_set"]["gigabytes"]["in_use"] == 1, r.json()
        assert files(volumes) == left
        assert s.stop(signal.SIGTERM) == 0, s.logs()
    finally:
        s.kill()
