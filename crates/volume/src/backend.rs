//! Block backends: where volume and snapshot data lives (Cinder's volume drivers).
//!
//! A backend names each piece of data by a *handle* it chooses; the volume and snapshot rows
//! keep them in `provider_location`. Snapshots and clones are copy-on-write: taking one
//! freezes the volume's current data under a new handle and gives the volume a fresh overlay,
//! so neither copies data. A frozen piece stays as long as something built on it does, so
//! deleting a snapshot whose data a volume still reads is safe.
//!
//! Nothing is deleted by handle: [`BlockBackend::sweep`] removes every piece no live handle
//! reaches. The service runs it after deletes and at start, so an operation cut off by a
//! crash (a piece written but never recorded) is reclaimed at the next start, and a piece a
//! row still owns is never removed. Operations that create pieces and the sweep must not run
//! at the same time (the service holds a lock).

use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use tokio::io::AsyncWriteExt;

pub type BackendFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;
pub type ByteStream = BoxStream<'static, io::Result<bytes::Bytes>>;

/// Where an image's data is read from.
pub enum ImageData {
    /// Streamed (paced, or from a store without local files).
    Stream(ByteStream),
    /// A local file the backend may copy or convert directly.
    File(PathBuf),
}

const GIB: u64 = 1 << 30;

/// What a backend reports about the space it uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capacity {
    /// Bytes allocated on disk by every piece.
    pub allocated_bytes: u64,
    /// Bytes still free where the backend writes (`None` when unknown).
    pub free_bytes: Option<u64>,
}

/// Where volume data lives.
pub trait BlockBackend: Send + Sync + 'static {
    /// The backend's name, as `os-vol-host-attr:host` shows it (`host@backend#pool`).
    fn name(&self) -> &str;

    /// A new blank volume of `size_gib`; returns its handle.
    fn create(&self, size_gib: u64) -> BackendFuture<'_, String>;

    /// A new volume of `size_gib` holding `data`, an image in `format` (`raw`, `qcow2`, …),
    /// converted to the backend's format.
    fn create_from_image<'a>(
        &'a self,
        data: ImageData,
        format: &'a str,
        size_gib: u64,
    ) -> BackendFuture<'a, String>;

    /// Freezes the data of `volume` as a snapshot: returns `(snapshot, new_volume)`; the
    /// volume's data now lives under `new_volume`. O(1).
    fn snapshot<'a>(&'a self, volume: &'a str) -> BackendFuture<'a, (String, String)>;

    /// A full, independent copy of `volume` (for snapshots of a volume in use, whose handle
    /// a hypervisor holds). Returns the copy's handle.
    fn copy<'a>(&'a self, volume: &'a str) -> BackendFuture<'a, String>;

    /// A new volume of `size_gib` starting with the data of `snapshot`. O(1).
    fn create_from_snapshot<'a>(
        &'a self,
        snapshot: &'a str,
        size_gib: u64,
    ) -> BackendFuture<'a, String>;

    /// A clone of `volume` of `size_gib`: returns `(new_source, clone)`; the source's data
    /// now lives under `new_source`. O(1).
    fn clone_volume<'a>(
        &'a self,
        volume: &'a str,
        size_gib: u64,
    ) -> BackendFuture<'a, (String, String)>;

    /// Grows `volume` to `size_gib`.
    fn extend<'a>(&'a self, volume: &'a str, size_gib: u64) -> BackendFuture<'a, ()>;

    /// Writes the data of `volume` to `dest` as an image in `format`.
    fn export<'a>(
        &'a self,
        volume: &'a str,
        format: &'a str,
        dest: &'a Path,
    ) -> BackendFuture<'a, ()>;

    /// How a hypervisor reaches `volume` (Cinder's `connection_info`).
    fn connection_info(&self, volume: &str) -> Value;

    /// Removes every piece that no handle in `live` reaches; returns how many it removed.
    fn sweep<'a>(&'a self, live: &'a HashSet<String>) -> BackendFuture<'a, usize>;

    /// Space used and free.
    fn capacity(&self) -> BackendFuture<'_, Capacity>;

    /// A scratch directory for conversions.
    fn scratch_dir(&self) -> PathBuf;
}

/// Volumes as files under one directory: raw, sparse files for volumes created blank or from
/// an image; qcow2 overlays over frozen files for snapshots and clones. Images are converted
/// with `qemu-img`.
pub struct LocalBackend {
    dir: PathBuf,
    qemu_img: String,
}

impl LocalBackend {
    /// A backend over `dir`, created if missing. `qemu_img` is the `qemu-img` to run.
    pub fn new(dir: impl Into<PathBuf>, qemu_img: impl Into<String>) -> io::Result<LocalBackend> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(LocalBackend {
            dir,
            qemu_img: qemu_img.into(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, handle: &str) -> io::Result<PathBuf> {
        if handle.is_empty()
            || !handle
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a volume handle: {handle:?}"),
            ));
        }
        Ok(self.dir.join(handle))
    }

    fn new_handle(kind: &str) -> String {
        format!("{kind}-{}", uuid::Uuid::new_v4().simple())
    }

    fn tmp(&self, handle: &str) -> PathBuf {
        self.dir.join(format!("{handle}.tmp"))
    }

    async fn qemu_img(&self, args: &[&str]) -> io::Result<()> {
        let out = tokio::process::Command::new(&self.qemu_img)
            .args(args)
            .current_dir(&self.dir)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("running {}: {e}", self.qemu_img)))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "qemu-img {}: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// A qcow2 overlay named `handle` over the frozen piece `backing`, of `size_gib`.
    async fn overlay(&self, handle: &str, backing: &str, size_gib: u64) -> io::Result<()> {
        let backing_fmt = format_of(&self.path(backing)?)?;
        let tmp = self.tmp(handle);
        let tmp_name = format!("{handle}.tmp");
        let size = format!("{}", size_gib * GIB);
        self.qemu_img(&[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            backing,
            "-F",
            backing_fmt,
            &tmp_name,
            &size,
        ])
        .await?;
        sync_and_rename(&tmp, &self.path(handle)?).await
    }

    /// Hard-links `handle` under a new name that is never written again; returns it.
    async fn freeze(&self, handle: &str) -> io::Result<String> {
        let frozen = Self::new_handle("frozen");
        tokio::fs::hard_link(self.path(handle)?, self.path(&frozen)?).await?;
        Ok(frozen)
    }
}

/// `qcow2` when the file starts with qcow2's magic, else `raw`.
fn format_of(path: &Path) -> io::Result<&'static str> {
    use std::io::Read;
    let mut head = [0u8; 4];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut head)?;
    Ok(if n == 4 && head == *b"QFI\xfb" {
        "qcow2"
    } else {
        "raw"
    })
}

/// The backing file a qcow2 file names, if any.
fn backing_of(path: &Path) -> io::Result<Option<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; 20];
    if f.read(&mut head)? < 20 || head[..4] != *b"QFI\xfb" {
        return Ok(None);
    }
    let off = u64::from_be_bytes(head[8..16].try_into().expect("8 bytes"));
    let len = u32::from_be_bytes(head[16..20].try_into().expect("4 bytes")) as usize;
    if off == 0 || len == 0 || len > 4096 {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(off))?;
    let mut name = vec![0u8; len];
    f.read_exact(&mut name)?;
    Ok(Some(String::from_utf8_lossy(&name).into_owned()))
}

async fn sync_and_rename(tmp: &Path, dest: &Path) -> io::Result<()> {
    let f = tokio::fs::OpenOptions::new().write(true).open(tmp).await?;
    f.sync_all().await?;
    drop(f);
    tokio::fs::rename(tmp, dest).await
}

/// Removes `path` when dropped unless disarmed: a failed or cancelled operation leaves no
/// temp file behind.
struct TempGuard(Option<PathBuf>);

impl TempGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl BlockBackend for LocalBackend {
    fn name(&self) -> &str {
        "local"
    }

    fn create(&self, size_gib: u64) -> BackendFuture<'_, String> {
        Box::pin(async move {
            let handle = Self::new_handle("volume");
            let tmp = self.tmp(&handle);
            let guard = TempGuard(Some(tmp.clone()));
            let f = tokio::fs::File::create(&tmp).await?;
            f.set_len(size_gib * GIB).await?;
            drop(f);
            sync_and_rename(&tmp, &self.path(&handle)?).await?;
            guard.disarm();
            Ok(handle)
        })
    }

    fn create_from_image<'a>(
        &'a self,
        data: ImageData,
        format: &'a str,
        size_gib: u64,
    ) -> BackendFuture<'a, String> {
        Box::pin(async move {
            let handle = Self::new_handle("volume");
            let tmp = self.tmp(&handle);
            let guard = TempGuard(Some(tmp.clone()));
            let raw = format == "raw";
            let src_fmt = match format {
                "raw" | "iso" => "raw",
                "qcow2" | "vmdk" | "vdi" | "vhdx" | "qed" => format,
                "vhd" => "vpc",
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("images in disk_format {other} cannot be written to a volume"),
                    ))
                }
            };
            // Where the image bytes are for qemu-img when they need converting: the image
            // store's own file, or a scratch copy of the stream.
            let mut landing_guard = TempGuard(None);
            let source: Option<PathBuf> = match data {
                ImageData::File(path) if raw => {
                    // File to file in the kernel (copy_file_range), no trip through memory.
                    let dest = tmp.clone();
                    tokio::task::spawn_blocking(move || std::fs::copy(&path, &dest))
                        .await
                        .map_err(io::Error::other)??;
                    None
                }
                ImageData::File(path) => Some(path),
                ImageData::Stream(mut stream) => {
                    let landing = if raw {
                        tmp.clone()
                    } else {
                        let l = self.dir.join(format!("{handle}.image.tmp"));
                        landing_guard = TempGuard(Some(l.clone()));
                        l
                    };
                    let mut f = tokio::fs::File::create(&landing).await?;
                    while let Some(chunk) = stream.next().await {
                        f.write_all(&chunk?).await?;
                    }
                    f.flush().await?;
                    drop(f);
                    (!raw).then_some(landing)
                }
            };
            if let Some(src) = source {
                let src = src.to_string_lossy().into_owned();
                let tmp_name = format!("{handle}.tmp");
                self.qemu_img(&[
                    "convert", "-q", "-f", src_fmt, "-O", "raw", "-S", "64k", &src, &tmp_name,
                ])
                .await?;
            }
            drop(landing_guard);
            let f = tokio::fs::OpenOptions::new().write(true).open(&tmp).await?;
            let len = f.metadata().await?.len();
            if len > size_gib * GIB {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "Image virtual size is {}GB and doesn't fit in a volume of size {size_gib}GB.",
                        len.div_ceil(GIB)
                    ),
                ));
            }
            f.set_len(size_gib * GIB).await?;
            drop(f);
            sync_and_rename(&tmp, &self.path(&handle)?).await?;
            guard.disarm();
            Ok(handle)
        })
    }

    fn snapshot<'a>(&'a self, volume: &'a str) -> BackendFuture<'a, (String, String)> {
        Box::pin(async move {
            let src = self.path(volume)?;
            let size = virtual_size(&src, &self.qemu_img).await?;
            let frozen = self.freeze(volume).await?;
            let next = Self::new_handle("volume");
            self.overlay(&next, &frozen, size.div_ceil(GIB)).await?;
            Ok((frozen, next))
        })
    }

    fn copy<'a>(&'a self, volume: &'a str) -> BackendFuture<'a, String> {
        Box::pin(async move {
            let handle = Self::new_handle("copy");
            let guard = TempGuard(Some(self.tmp(&handle)));
            let src_fmt = format_of(&self.path(volume)?)?;
            let tmp_name = format!("{handle}.tmp");
            self.qemu_img(&[
                "convert", "-q", "-f", src_fmt, "-O", "raw", "-S", "64k", volume, &tmp_name,
            ])
            .await?;
            sync_and_rename(&self.tmp(&handle), &self.path(&handle)?).await?;
            guard.disarm();
            Ok(handle)
        })
    }

    fn create_from_snapshot<'a>(
        &'a self,
        snapshot: &'a str,
        size_gib: u64,
    ) -> BackendFuture<'a, String> {
        Box::pin(async move {
            let handle = Self::new_handle("volume");
            let guard = TempGuard(Some(self.tmp(&handle)));
            self.overlay(&handle, snapshot, size_gib).await?;
            guard.disarm();
            Ok(handle)
        })
    }

    fn clone_volume<'a>(
        &'a self,
        volume: &'a str,
        size_gib: u64,
    ) -> BackendFuture<'a, (String, String)> {
        Box::pin(async move {
            let src = self.path(volume)?;
            let src_size = virtual_size(&src, &self.qemu_img).await?;
            let frozen = self.freeze(volume).await?;
            let next = Self::new_handle("volume");
            let clone = Self::new_handle("volume");
            let g1 = TempGuard(Some(self.tmp(&next)));
            let g2 = TempGuard(Some(self.tmp(&clone)));
            self.overlay(&next, &frozen, src_size.div_ceil(GIB)).await?;
            self.overlay(&clone, &frozen, size_gib).await?;
            g1.disarm();
            g2.disarm();
            Ok((next, clone))
        })
    }

    fn extend<'a>(&'a self, volume: &'a str, size_gib: u64) -> BackendFuture<'a, ()> {
        Box::pin(async move {
            let path = self.path(volume)?;
            if format_of(&path)? == "raw" {
                let f = tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .await?;
                if f.metadata().await?.len() < size_gib * GIB {
                    f.set_len(size_gib * GIB).await?;
                }
                f.sync_all().await
            } else {
                let size = format!("{}", size_gib * GIB);
                self.qemu_img(&["resize", "-q", "-f", "qcow2", volume, &size])
                    .await
            }
        })
    }

    fn export<'a>(
        &'a self,
        volume: &'a str,
        format: &'a str,
        dest: &'a Path,
    ) -> BackendFuture<'a, ()> {
        Box::pin(async move {
            let src_fmt = format_of(&self.path(volume)?)?;
            let out_fmt = match format {
                "raw" | "qcow2" | "vmdk" | "vdi" | "vhdx" => format,
                "vhd" => "vpc",
                other => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("volumes cannot be exported as {other}"),
                    ))
                }
            };
            let dest = dest.to_string_lossy().into_owned();
            self.qemu_img(&["convert", "-q", "-f", src_fmt, "-O", out_fmt, volume, &dest])
                .await
        })
    }

    fn connection_info(&self, volume: &str) -> Value {
        let path = self.dir.join(volume);
        let format = format_of(&path).unwrap_or("raw");
        json!({
            "driver_volume_type": "file",
            "data": {"path": path.to_string_lossy(), "format": format, "name": volume},
        })
    }

    fn sweep<'a>(&'a self, live: &'a HashSet<String>) -> BackendFuture<'a, usize> {
        Box::pin(async move {
            // Keep every live handle and every piece a kept qcow2 file is built on.
            let mut keep: HashSet<String> = HashSet::new();
            let mut todo: Vec<String> = live.iter().cloned().collect();
            while let Some(h) = todo.pop() {
                if !keep.insert(h.clone()) {
                    continue;
                }
                if let Ok(p) = self.path(&h) {
                    if let Ok(Some(b)) = backing_of(&p) {
                        todo.push(b);
                    }
                }
            }
            let mut removed = 0;
            let mut entries = tokio::fs::read_dir(&self.dir).await?;
            while let Some(e) = entries.next_entry().await? {
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name) {
                    tokio::fs::remove_file(e.path()).await?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }

    fn capacity(&self) -> BackendFuture<'_, Capacity> {
        Box::pin(async move {
            use std::os::unix::fs::MetadataExt;
            let mut allocated = 0;
            let mut entries = tokio::fs::read_dir(&self.dir).await?;
            let mut seen = HashSet::new();
            while let Some(e) = entries.next_entry().await? {
                let m = e.metadata().await?;
                if seen.insert(m.ino()) {
                    allocated += m.blocks() * 512;
                }
            }
            Ok(Capacity {
                allocated_bytes: allocated,
                free_bytes: None,
            })
        })
    }

    fn scratch_dir(&self) -> PathBuf {
        self.dir.clone()
    }
}

/// The size the guest sees: the file length for raw, the header's size for qcow2.
async fn virtual_size(path: &Path, _qemu_img: &str) -> io::Result<u64> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut head = [0u8; 32];
    let n = f.read(&mut head)?;
    if n == 32 && head[..4] == *b"QFI\xfb" {
        Ok(u64::from_be_bytes(
            head[24..32].try_into().expect("8 bytes"),
        ))
    } else {
        Ok(f.metadata()?.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu_img() -> Option<String> {
        let ok = std::process::Command::new("qemu-img")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| "qemu-img".to_string())
    }

    fn stream(data: Vec<u8>) -> ImageData {
        ImageData::Stream(futures::stream::iter(vec![Ok(bytes::Bytes::from(data))]).boxed())
    }

    async fn read(b: &LocalBackend, handle: &str, len: usize) -> Vec<u8> {
        let out = b.dir.join("read.raw");
        b.export(handle, "raw", &out).await.unwrap();
        let mut data = std::fs::read(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        data.truncate(len);
        data
    }

    #[tokio::test]
    async fn blank_volumes_are_sparse_and_extend() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("v"), "qemu-img").unwrap();
        let h = b.create(2).await.unwrap();
        let m = std::fs::metadata(b.dir.join(&h)).unwrap();
        assert_eq!(m.len(), 2 * GIB);
        use std::os::unix::fs::MetadataExt;
        assert!(
            m.blocks() * 512 < 1 << 20,
            "not sparse: {} blocks",
            m.blocks()
        );
        b.extend(&h, 3).await.unwrap();
        assert_eq!(std::fs::metadata(b.dir.join(&h)).unwrap().len(), 3 * GIB);
        assert_eq!(b.connection_info(&h)["data"]["format"], "raw");
    }

    #[tokio::test]
    async fn snapshots_and_clones_share_data_and_the_sweep_keeps_what_is_reached() {
        let Some(q) = qemu_img() else {
            panic!("qemu-img is required (apt install qemu-utils)");
        };
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path().join("v"), q).unwrap();
        let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let vol = b
            .create_from_image(stream(payload.clone()), "raw", 1)
            .await
            .unwrap();
        // A raw image file is copied file to file, with the same bytes.
        let src = dir.path().join("image.raw");
        std::fs::write(&src, &payload).unwrap();
        let copied = b
            .create_from_image(ImageData::File(src), "raw", 1)
            .await
            .unwrap();
        assert_eq!(read(&b, &copied, payload.len()).await, payload);
        assert_eq!(std::fs::metadata(b.dir.join(&copied)).unwrap().len(), GIB);
        let before = b.capacity().await.unwrap().allocated_bytes;
        let (snap, vol2) = b.snapshot(&vol).await.unwrap();
        let (vol3, clone) = b.clone_volume(&vol2, 2).await.unwrap();
        let from_snap = b.create_from_snapshot(&snap, 1).await.unwrap();
        let after = b.capacity().await.unwrap().allocated_bytes;
        // Four overlays of metadata only, not four copies.
        assert!(after - before < 4 << 20, "{before} → {after}");
        for h in [&vol3, &clone, &from_snap, &snap] {
            assert_eq!(read(&b, h, payload.len()).await, payload, "{h}");
        }
        assert_eq!(b.connection_info(&clone)["data"]["format"], "qcow2");
        // Only the clone and the volume from the snapshot stay: everything they are built on
        // stays with them, the rest goes.
        let live: HashSet<String> = [clone.clone(), from_snap.clone()].into_iter().collect();
        let removed = b.sweep(&live).await.unwrap();
        assert!(removed >= 2, "{removed}");
        for h in [&clone, &from_snap] {
            assert_eq!(read(&b, h, payload.len()).await, payload, "{h}");
        }
        assert!(!b.dir.join(&vol3).exists());
        // Nothing live: the directory empties.
        b.sweep(&HashSet::new()).await.unwrap();
        assert_eq!(std::fs::read_dir(&b.dir).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn qcow2_images_are_converted_and_too_large_ones_refused() {
        let Some(q) = qemu_img() else {
            panic!("qemu-img is required (apt install qemu-utils)");
        };
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("img.qcow2");
        let ok = std::process::Command::new(&q)
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&src)
            .arg("1536M")
            .status()
            .unwrap();
        assert!(ok.success());
        let b = LocalBackend::new(dir.path().join("v"), q).unwrap();
        let data = std::fs::read(&src).unwrap();
        let err = b
            .create_from_image(stream(data.clone()), "qcow2", 1)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("doesn't fit"), "{err}");
        let h = b.create_from_image(stream(data), "qcow2", 2).await.unwrap();
        assert_eq!(std::fs::metadata(b.dir.join(&h)).unwrap().len(), 2 * GIB);
        // From the image store's file directly: converted without a scratch copy.
        let direct = b
            .create_from_image(ImageData::File(src.clone()), "qcow2", 2)
            .await
            .unwrap();
        assert_eq!(
            std::fs::metadata(b.dir.join(&direct)).unwrap().len(),
            2 * GIB
        );
        b.sweep(&[h.clone()].into_iter().collect()).await.unwrap();
        // No scratch or temp file left, whether it failed or not.
        assert_eq!(std::fs::read_dir(&b.dir).unwrap().count(), 1);
    }
}
