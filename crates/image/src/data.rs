//! Image data: where the bytes of an image live, behind [`ImageStore`], and what the upload path
//! learns while they stream past (size, md5, sha512, the qcow2 virtual size).
//!
//! The store knows nothing of image records: it keeps one blob per image id. The record's
//! status (queued → saving → active) is the source of truth for whether the blob is complete;
//! a blob is only ever visible under its id once it was written whole (write to a temp file,
//! fsync, rename), so a crash mid-upload leaves at most a temp file, never a torn image.
//!
//! Interoperable import (`glance-direct`) stages data before it becomes the image's: a store
//! offers a second store for that, [`ImageStore::staging`], with the same contract and the
//! same ids (for [`LocalStore`], the hidden `.staging` directory inside its own). Import reads
//! the staged blob, hashes it while writing it into the store proper, then removes it.

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;

/// The id of the one store image data goes to, as `GET /v2/info/stores` and the image's
/// `stores` attribute name it.
pub const STORE_ID: &str = "local";

/// A stream of image bytes.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;
/// The future an [`ImageStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// Where image data is kept (Glance's store drivers).
pub trait ImageStore: Send + Sync + 'static {
    /// Writes the whole of `data` under `id` and returns the number of bytes written. Atomic:
    /// readers see either the previous blob (if any) or the new one, never a part; when the
    /// stream yields an error or the future is dropped, nothing new is left behind. Calling it
    /// again for the same id replaces the blob, so a retried upload is safe.
    fn put<'a>(&'a self, id: &'a str, data: ByteStream) -> StoreFuture<'a, u64>;

    /// The bytes `offset .. offset + len` of the blob under `id` (`len: None` = to the end), as a
    /// stream. Read-only and repeatable. `NotFound` when there is no blob.
    fn get<'a>(&'a self, id: &'a str, offset: u64, len: Option<u64>)
        -> StoreFuture<'a, ByteStream>;

    /// Removes the blob under `id`. Idempotent: removing a blob that does not exist is `Ok`.
    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;

    /// Removes what writes interrupted by a crash left behind, returning how many leftovers it
    /// removed. Only safe while no `put` is running (at start). Idempotent.
    fn sweep(&self) -> StoreFuture<'_, usize> {
        Box::pin(async { Ok(0) })
    }

    /// The blob of `id` as a local file, when the store keeps it as one (readers that can
    /// copy file to file, such as a volume backend, then avoid streaming it through memory).
    /// Only blobs written whole are named; `None` otherwise.
    fn local_path(&self, _id: &str) -> Option<PathBuf> {
        None
    }

    /// The ids of the blobs this store holds (complete ones only). Read-only.
    fn list(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Where `glance-direct` imports stage data (`PUT …/stage`) before it becomes the image's:
    /// another store with this trait's contract, keyed by the same image ids, kept apart from
    /// image data. `None` when this store cannot stage (imports are then refused).
    fn staging(&self) -> Option<&dyn ImageStore> {
        None
    }
}

/// Image data as files under one directory (`<data_dir>/images/<id>`), staged data under its
/// `.staging` subdirectory (created on first use; ids never contain a dot, so it cannot clash
/// with a blob).
pub struct LocalStore {
    dir: PathBuf,
    /// The staging area; `None` for the staging area itself.
    staging: Option<Box<LocalStore>>,
    /// Create `dir` on the first `put` (the staging area) rather than up front.
    lazy: bool,
}

/// How much is read from a file per chunk when streaming it out.
const CHUNK: usize = 64 * 1024;

impl LocalStore {
    /// A store over `dir`, created (with parents) if missing.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<LocalStore> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        let staging = LocalStore {
            dir: dir.join(".staging"),
            staging: None,
            lazy: true,
        };
        Ok(LocalStore {
            dir,
            staging: Some(Box::new(staging)),
            lazy: false,
        })
    }

    /// The file holding the blob of `id`; ids are checked to be plain names first.
    fn path(&self, id: &str) -> io::Result<PathBuf> {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not an image id: {id:?}"),
            ));
        }
        Ok(self.dir.join(id))
    }
}

/// Removes a temp file when dropped unless disarmed: covers errors and dropped futures alike.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The entries of `dir`; none when it does not exist (a lazy staging area not used yet).
async fn read_dir_if_any(dir: &std::path::Path) -> io::Result<Option<tokio::fs::ReadDir>> {
    match tokio::fs::read_dir(dir).await {
        Ok(d) => Ok(Some(d)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl ImageStore for LocalStore {
    fn local_path(&self, id: &str) -> Option<PathBuf> {
        self.path(id).ok().filter(|p| p.is_file())
    }

    fn staging(&self) -> Option<&dyn ImageStore> {
        self.staging.as_deref().map(|s| s as &dyn ImageStore)
    }

    fn list(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut out = Vec::new();
            let Some(mut dir) = read_dir_if_any(&self.dir).await? else {
                return Ok(out);
            };
            while let Some(e) = dir.next_entry().await? {
                let name = e.file_name().to_string_lossy().into_owned();
                if !name.starts_with('.') && e.file_type().await?.is_file() {
                    out.push(name);
                }
            }
            Ok(out)
        })
    }

    fn sweep(&self) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let mut removed = 0;
            let Some(mut dir) = read_dir_if_any(&self.dir).await? else {
                return Ok(0);
            };
            while let Some(e) = dir.next_entry().await? {
                let name = e.file_name();
                let name = name.to_string_lossy();
                // Temp files are `.<id>.<uuid>.tmp` (see `put`).
                if name.starts_with('.') && name.ends_with(".tmp") {
                    tokio::fs::remove_file(e.path()).await?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
    }

    fn put<'a>(&'a self, id: &'a str, mut data: ByteStream) -> StoreFuture<'a, u64> {
        Box::pin(async move {
            use tokio::io::AsyncWriteExt;
            let dest = self.path(id)?;
            if self.lazy {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)?;
            }
            let tmp = self
                .dir
                .join(format!(".{id}.{}.tmp", strata_core::ids::uuid()));
            let mut guard = TempGuard(Some(tmp.clone()));
            let mut f = tokio::fs::File::create(&tmp).await?;
            let mut n = 0u64;
            while let Some(chunk) = data.next().await {
                let chunk = chunk?;
                f.write_all(&chunk).await?;
                n += chunk.len() as u64;
            }
            f.flush().await?;
            f.sync_all().await?;
            drop(f);
            tokio::fs::rename(&tmp, &dest).await?;
            guard.0 = None;
            // The rename is durable once the directory is.
            if let Ok(d) = tokio::fs::File::open(&self.dir).await {
                let _ = d.sync_all().await;
            }
            Ok(n)
        })
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
        offset: u64,
        len: Option<u64>,
    ) -> StoreFuture<'a, ByteStream> {
        Box::pin(async move {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let mut f = tokio::fs::File::open(self.path(id)?).await?;
            if offset > 0 {
                f.seek(io::SeekFrom::Start(offset)).await?;
            }
            let left = len.unwrap_or(u64::MAX);
            let s = futures::stream::try_unfold((f, left), |(mut f, left)| async move {
                if left == 0 {
                    return Ok(None);
                }
                let want = left.min(CHUNK as u64) as usize;
                let mut buf = vec![0u8; want];
                let n = f.read(&mut buf).await?;
                if n == 0 {
                    return Ok(None);
                }
                buf.truncate(n);
                Ok(Some((Bytes::from(buf), (f, left - n as u64))))
            });
            Ok(s.boxed())
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            match tokio::fs::remove_file(self.path(id)?).await {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            }
        })
    }
}

/// A store for a server with nowhere to keep image data (`strata server` without
/// `image.store_dir` or `server.data_dir`): every upload and download fails, deletes succeed.
pub struct NoStore;

fn unconfigured() -> io::Error {
    io::Error::other("no image store is configured (set image.store_dir)")
}

impl ImageStore for NoStore {
    fn put<'a>(&'a self, _id: &'a str, _data: ByteStream) -> StoreFuture<'a, u64> {
        Box::pin(async { Err(unconfigured()) })
    }
    fn get<'a>(
        &'a self,
        _id: &'a str,
        _offset: u64,
        _len: Option<u64>,
    ) -> StoreFuture<'a, ByteStream> {
        Box::pin(async { Err(unconfigured()) })
    }
    fn delete<'a>(&'a self, _id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async { Ok(()) })
    }
}

/// What the upload path computes while the bytes stream by. md5 is computed inline; sha512,
/// the costlier of the two, on a thread of its own fed through a bounded channel, so an upload
/// keeps two cores busy instead of serialising both hashes on one (the hashes, not the disk,
/// bound upload speed). The thread starts with the first chunk and ends with [`Digest::finish`]
/// or when the digest is dropped.
pub struct Digest {
    md5: md5::Md5,
    sha512: Option<Sha512Worker>,
    pub size: u64,
    /// The first bytes of the image, for format headers.
    head: Vec<u8>,
}

struct Sha512Worker {
    tx: std::sync::mpsc::SyncSender<Bytes>,
    done: std::thread::JoinHandle<Vec<u8>>,
}

/// Chunks queued for the sha512 thread before `update` waits for it (with 64 KiB chunks, 4 MiB).
const SHA_QUEUE: usize = 64;

impl Sha512Worker {
    fn start() -> Sha512Worker {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(SHA_QUEUE);
        let done = std::thread::Builder::new()
            .name("sha512".into())
            .spawn(move || {
                use sha2::Digest as _;
                let mut h = sha2::Sha512::new();
                while let Ok(chunk) = rx.recv() {
                    h.update(&chunk);
                }
                h.finalize().to_vec()
            })
            .expect("spawning the sha512 thread");
        Sha512Worker { tx, done }
    }
}

/// How many leading bytes are kept for [`Digest::virtual_size`].
const HEAD: usize = 32;

impl Default for Digest {
    fn default() -> Self {
        use sha2::Digest as _;
        Digest {
            md5: md5::Md5::new(),
            sha512: None,
            size: 0,
            head: Vec::new(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Digest {
    pub fn update(&mut self, chunk: &Bytes) {
        use sha2::Digest as _;
        let worker = self.sha512.get_or_insert_with(Sha512Worker::start);
        // A clone of `Bytes` shares the buffer; the send waits only when the thread is
        // SHA_QUEUE chunks behind.
        let _ = worker.tx.send(chunk.clone());
        self.md5.update(chunk);
        self.size += chunk.len() as u64;
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
    }

    /// `(checksum, os_hash_value)`: hex md5 and hex sha512.
    pub fn finish(self) -> (String, String) {
        use sha2::Digest as _;
        let sha = match self.sha512 {
            Some(w) => {
                drop(w.tx);
                w.done.join().expect("the sha512 thread panicked")
            }
            None => sha2::Sha512::new().finalize().to_vec(),
        };
        (hex(&self.md5.finalize()), hex(&sha))
    }

    /// The size the image has as a disk: the qcow2 header's size for qcow2 data, the byte size
    /// for raw; unknown (`None`) for other formats, as Glance leaves it.
    pub fn virtual_size(&self, disk_format: Option<&str>) -> Option<u64> {
        match disk_format {
            Some("qcow2") => qcow2_virtual_size(&self.head),
            Some("raw") => Some(self.size),
            _ => None,
        }
    }
}

/// The virtual size in a qcow2 header: magic `QFI\xfb`, then the size as a big-endian u64 at
/// offset 24.
pub fn qcow2_virtual_size(head: &[u8]) -> Option<u64> {
    if head.len() < 32 || &head[..4] != b"QFI\xfb" {
        return None;
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&head[24..32]);
    Some(u64::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qcow2_header() {
        let mut h = b"QFI\xfb\0\0\0\x03".to_vec();
        h.resize(24, 0);
        h.extend_from_slice(&(1u64 << 20).to_be_bytes());
        assert_eq!(qcow2_virtual_size(&h), Some(1 << 20));
        assert_eq!(qcow2_virtual_size(&h[..31]), None);
        h[0] = b'X';
        assert_eq!(qcow2_virtual_size(&h), None);
    }

    #[test]
    fn digests_across_chunks() {
        let mut d = Digest::default();
        d.update(&Bytes::from_static(b"hello "));
        d.update(&Bytes::from_static(b"world"));
        assert_eq!(d.size, 11);
        assert_eq!(d.virtual_size(Some("raw")), Some(11));
        let (md5, sha512) = d.finish();
        assert_eq!(md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        // Computed on the sha512 thread from the same chunks.
        assert_eq!(
            sha512,
            "309ecc489c12d6eb4cc40f50c902f2b4d0ed77ee511a7c7a9bcd3ca86d4cd86f\
             989dd35bc5ff499670da34255b45b0cfd830e81f605dcf7dc5542e93ae9cd76f"
        );
        // No data at all: the digests of nothing, without a thread.
        let (md5, sha512) = Digest::default().finish();
        assert_eq!(md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert!(sha512.starts_with("cf83e1357eefb8bd"), "{sha512}");
    }

    #[tokio::test]
    async fn no_store_refuses_data() {
        let empty = futures::stream::iter(Vec::<io::Result<Bytes>>::new()).boxed();
        assert!(NoStore.put("i", empty).await.is_err());
        assert!(NoStore.get("i", 0, None).await.is_err());
        assert!(NoStore.delete("i").await.is_ok());
    }

    #[tokio::test]
    async fn local_store_round_trip() {
        let dir = std::env::temp_dir().join(format!("strata-img-{}", strata_core::ids::uuid()));
        let s = LocalStore::new(&dir).unwrap();
        let data = futures::stream::iter(vec![Ok(Bytes::from("abc")), Ok(Bytes::from("def"))]);
        assert_eq!(s.put("i1", data.boxed()).await.unwrap(), 6);
        let got: Vec<Bytes> = s
            .get("i1", 2, Some(3))
            .await
            .unwrap()
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(got.concat(), b"cde");
        // A failed put leaves the old blob and no temp file.
        let bad = futures::stream::iter(vec![Ok(Bytes::from("x")), Err(io::Error::other("cut"))]);
        assert!(s.put("i1", bad.boxed()).await.is_err());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        s.delete("i1").await.unwrap();
        s.delete("i1").await.unwrap();
        assert!(s.get("i1", 0, None).await.is_err());
        assert!(s.path("../x").is_err());
        // The staging area: created on first use, apart from image data, same contract.
        let st = s.staging().unwrap();
        assert!(st.list().await.unwrap().is_empty());
        assert_eq!(st.sweep().await.unwrap(), 0);
        let data = futures::stream::iter(vec![Ok(Bytes::from("staged"))]);
        assert_eq!(st.put("i2", data.boxed()).await.unwrap(), 6);
        assert_eq!(st.list().await.unwrap(), vec!["i2".to_string()]);
        assert!(s.list().await.unwrap().is_empty());
        assert!(s.get("i2", 0, None).await.is_err());
        st.delete("i2").await.unwrap();
        assert!(st.list().await.unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
