//! The libvirt driver: QEMU guests (KVM, or TCG where KVM cannot run them) through libvirt, as
//! nova-compute's libvirt driver runs them.
//!
//! Each guest is a persistent libvirt domain named as the server names it (`instance-…`)
//! with the server's UUID, and a directory `<instances_path>/<uuid>/` holding its root disk
//! (`disk`, a qcow2 overlay on the cached image in `<instances_path>/_base/`), its config drive
//! (`disk.config`, ISO 9660 `config-2`), its serial console log (`console.log`, what
//! `os-getConsoleOutput` shows) and the domain's XML (`libvirt.xml`). Only domains that have
//! such a directory are the driver's: other domains on the host are never listed or touched.
//!
//! Images whose properties name a `kernel_id` (and `ramdisk_id`) boot that kernel directly
//! (Nova's AMI-style images) with `os_command_line` (default `root=/dev/vda console=tty0
//! console=ttyS0`). Volumes are file or RBD disks hot-plugged as virtio disks whose serial is
//! the volume id. NICs are tap devices (`tap` + the port id's first 11 characters) that the
//! network data plane wires; until it does they lead nowhere.
//!
//! libvirt is driven with `virsh` (from libvirt-clients, on every libvirt host) rather than
//! by linking libvirt: the strata binary stays free of C libraries, and one `virsh` call
//! (~20 ms) is small next to what it does. Disks are made with `qemu-img`, config drives with
//! `genisoimage` (as Nova does).

use crate::{HostResources, HvError, HvFuture, Hypervisor};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use strata_agent_api::{
    ControlPlane, Disk, InstanceSpec, Power, PowerState, Sizing, SnapshotRequest, Vif,
};

/// Where QEMU runs guests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtType {
    /// Hardware virtualisation (`/dev/kvm`).
    Kvm,
    /// QEMU's TCG emulation: slow, runs anywhere.
    Qemu,
}

impl VirtType {
    /// `kvm`, `qemu` or `auto` ([`VirtType::detect`]).
    pub fn parse(s: &str) -> Result<VirtType, String> {
        match s {
            "kvm" => Ok(VirtType::Kvm),
            "qemu" | "tcg" => Ok(VirtType::Qemu),
            "auto" => Ok(VirtType::detect()),
            other => Err(format!("unknown virt type {other:?} (kvm, qemu or auto)")),
        }
    }

    /// KVM when `/dev/kvm` can be opened and this host is not itself a virtual machine;
    /// otherwise TCG. Nested KVM is not trusted: on many clouds `/dev/kvm` exists in a VM and
    /// QEMU starts, but guests hang once their kernel takes over (seen on this project's CI
    /// machines). An operator with working nested virtualisation says `kvm`.
    pub fn detect() -> VirtType {
        let kvm = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        VirtType::decide(kvm, &cpuinfo)
    }

    /// [`VirtType::detect`]'s decision from whether `/dev/kvm` opens and `/proc/cpuinfo`.
    pub fn decide(kvm_opens: bool, cpuinfo: &str) -> VirtType {
        let virtual_machine = cpuinfo
            .lines()
            .filter(|l| l.starts_with("flags"))
            .any(|l| l.split_whitespace().any(|f| f == "hypervisor"));
        if kvm_opens && !virtual_machine {
            VirtType::Kvm
        } else {
            VirtType::Qemu
        }
    }

    /// The domain type libvirt calls it.
    pub fn domain_type(self) -> &'static str {
        match self {
            VirtType::Kvm => "kvm",
            VirtType::Qemu => "qemu",
        }
    }
}

/// How the driver is set up.
#[derive(Debug, Clone)]
pub struct LibvirtConfig {
    /// `qemu:///system`.
    pub uri: String,
    pub virt_type: VirtType,
    /// Guests' directories and the image cache (`_base`).
    pub instances_path: PathBuf,
    /// How long a guest gets to power off cleanly (ACPI) before it is destroyed.
    pub shutdown_timeout: Duration,
    pub virsh: String,
    pub qemu_img: String,
    pub mkisofs: String,
}

impl LibvirtConfig {
    pub fn new(instances_path: impl Into<PathBuf>, virt_type: VirtType) -> LibvirtConfig {
        LibvirtConfig {
            uri: "qemu:///system".into(),
            virt_type,
            instances_path: instances_path.into(),
            shutdown_timeout: Duration::from_secs(60),
            virsh: "virsh".into(),
            qemu_img: "qemu-img".into(),
            mkisofs: "genisoimage".into(),
        }
    }
}

/// The libvirt driver.
pub struct LibvirtDriver {
    cfg: LibvirtConfig,
    /// Where images come from.
    server: Arc<dyn ControlPlane>,
    /// One download per image at a time.
    fetching: tokio::sync::Mutex<()>,
}

fn err(message: impl Into<String>) -> HvError {
    HvError {
        message: message.into(),
        retryable: false,
    }
}

fn retryable(message: impl Into<String>) -> HvError {
    HvError {
        message: message.into(),
        retryable: true,
    }
}

/// A domain as `virsh list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    uuid: String,
    name: String,
    state: PowerState,
}

impl LibvirtDriver {
    pub fn new(cfg: LibvirtConfig, server: Arc<dyn ControlPlane>) -> LibvirtDriver {
        LibvirtDriver {
            cfg,
            server,
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn dir(&self, uuid: &str) -> PathBuf {
        self.cfg.instances_path.join(uuid)
    }

    fn base(&self) -> PathBuf {
        self.cfg.instances_path.join("_base")
    }

    /// Runs `virsh -c URI -q ARGS` and answers its standard output.
    async fn virsh(&self, args: &[&str]) -> Result<String, HvError> {
        let run = tokio::process::Command::new(&self.cfg.virsh)
            .arg("-c")
            .arg(&self.cfg.uri)
            .arg("-q")
            .args(args)
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(120), run)
            .await
            .map_err(|_| retryable(format!("virsh {} did not answer in 120 s", args.join(" "))))?
            .map_err(|e| retryable(format!("running {}: {e}", self.cfg.virsh)))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(retryable(format!(
                "virsh {}: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    async fn run(&self, prog: &str, args: &[&str]) -> Result<String, HvError> {
        let out = tokio::process::Command::new(prog)
            .args(args)
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| retryable(format!("running {prog}: {e}")))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(retryable(format!(
                "{prog} {}: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// The driver's domains (those with a directory) and their states.
    async fn listed(&self) -> Result<Vec<Listed>, HvError> {
        let states = self.virsh(&["list", "--all", "--managed-save"]).await?;
        let ids = self.virsh(&["list", "--all", "--uuid", "--name"]).await?;
        let by_name = parse_states(&states);
        let mut out = Vec::new();
        for (uuid, name) in parse_ids(&ids) {
            if !self.dir(&uuid).is_dir() {
                continue;
            }
            let state = by_name.get(&name).copied().unwrap_or(PowerState::NoState);
            out.push(Listed { uuid, name, state });
        }
        Ok(out)
    }

    async fn state(&self, uuid: &str) -> Result<Option<PowerState>, HvError> {
        Ok(self
            .listed()
            .await?
            .into_iter()
            .find(|l| l.uuid == uuid)
            .map(|l| l.state))
    }

    /// The cached copy of image `id` in `_base` (downloaded once) and its Glance record.
    async fn cached_image(&self, id: &str) -> Result<(PathBuf, serde_json::Value), HvError> {
        let record = self.server.image(id).await.map_err(|e| HvError {
            message: format!("image {id}: {e}"),
            retryable: !matches!(e, strata_agent_api::ApiError::Refused { status: 404, .. }),
        })?;
        let path = self.base().join(id);
        let _one = self.fetching.lock().await;
        if tokio::fs::metadata(&path).await.is_ok() {
            return Ok((path, record));
        }
        tokio::fs::create_dir_all(self.base())
            .await
            .map_err(|e| retryable(format!("creating {}: {e}", self.base().display())))?;
        let part = path.with_extension("part");
        let n = self
            .server
            .download_image(id, &part)
            .await
            .map_err(|e| retryable(format!("downloading image {id}: {e}")))?;
        let expected = record["size"].as_u64();
        if expected.is_some_and(|s| s != n) {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(retryable(format!(
                "image {id}: {n} bytes downloaded, the image service says {}",
                expected.unwrap_or_default()
            )));
        }
        if let (Some("sha512"), Some(want)) = (
            record["os_hash_algo"].as_str(),
            record["os_hash_value"].as_str(),
        ) {
            let got = sha512_file(&part).await?;
            if !got.eq_ignore_ascii_case(want) {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(retryable(format!(
                    "image {id}: the downloaded data's sha512 is {got}, the image service says {want}"
                )));
            }
        }
        tokio::fs::rename(&part, &path)
            .await
            .map_err(|e| retryable(format!("caching image {id}: {e}")))?;
        tracing::info!(image = %id, bytes = n, "libvirt: image cached");
        Ok((path, record))
    }

    /// Creates the guest's root disk (a qcow2 overlay on the cached image, grown to the
    /// flavor's root size) unless it exists; answers its path.
    async fn root_disk(&self, spec: &InstanceSpec, image: &str) -> Result<PathBuf, HvError> {
        let disk = self.dir(&spec.uuid).join("disk");
        if tokio::fs::metadata(&disk).await.is_ok() {
            return Ok(disk);
        }
        let (base, record) = self.cached_image(image).await?;
        let format = match record["disk_format"].as_str().unwrap_or("raw") {
            "qcow2" => "qcow2",
            "raw" | "ami" | "aki" | "ari" | "iso" => "raw",
            other => return Err(err(format!("image {image}: disk format {other} is not supported by the libvirt driver (raw, qcow2, ami)"))),
        };
        let info = self
            .run(
                &self.cfg.qemu_img,
                &[
                    "info",
                    "--output",
                    "json",
                    "-f",
                    format,
                    &base.to_string_lossy(),
                ],
            )
            .await?;
        let virtual_size = serde_json::from_str::<serde_json::Value>(&info)
            .ok()
            .and_then(|v| v["virtual-size"].as_u64())
            .unwrap_or(0);
        let want = (spec.sizing.root_gb.max(0) as u64) << 30;
        let part = disk.with_extension("part");
        let (base_s, part_s) = (base.to_string_lossy(), part.to_string_lossy());
        let mut args = vec![
            "create", "-q", "-f", "qcow2", "-F", format, "-b", &base_s, &part_s,
        ];
        let size = want.to_string();
        if want > virtual_size {
            args.push(&size);
        }
        self.run(&self.cfg.qemu_img, &args).await?;
        tokio::fs::rename(&part, &disk)
            .await
            .map_err(|e| retryable(format!("creating {}: {e}", disk.display())))?;
        Ok(disk)
    }

    /// Makes the guest's pieces that are missing (its directory, root disk, cached kernel
    /// and ramdisk, ephemeral and swap disks) and its config drive; answers where they are.
    async fn layout(&self, spec: &InstanceSpec) -> Result<Layout, HvError> {
        let dir = self.dir(&spec.uuid);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| retryable(format!("creating {}: {e}", dir.display())))?;
        let mut layout = Layout {
            dir: dir.clone(),
            root: None,
            kernel: None,
            ramdisk: None,
            cmdline: None,
            config_drive: None,
            ephemeral: None,
            swap: None,
        };
        let root = spec
            .disks
            .iter()
            .find(|d| d.source == "local" && d.connection_info["driver_volume_type"] == "image");
        if let Some(d) = root {
            let image = d.connection_info["data"]["image_id"]
                .as_str()
                .map(String::from)
                .or_else(|| spec.image_id.clone())
                .ok_or_else(|| err("the root disk names no image"))?;
            layout.root = Some(self.root_disk(spec, &image).await?);
        }
        if let Some(k) = spec
            .image_properties
            .get("kernel_id")
            .filter(|k| !k.is_empty())
        {
            layout.kernel = Some(self.cached_image(k).await?.0);
            if let Some(r) = spec
                .image_properties
                .get("ramdisk_id")
                .filter(|r| !r.is_empty())
            {
                layout.ramdisk = Some(self.cached_image(r).await?.0);
            }
            layout.cmdline = Some(
                spec.image_properties
                    .get("os_command_line")
                    .cloned()
                    .unwrap_or_else(|| "root=/dev/vda console=tty0 console=ttyS0".into()),
            );
        }
        if spec.sizing.ephemeral_gb > 0 {
            let f = dir.join(EPHEMERAL);
            self.scratch_disk(
                &f,
                (spec.sizing.ephemeral_gb as u64) << 30,
                Scratch::Ephemeral,
            )
            .await?;
            layout.ephemeral = Some(f);
        }
        if spec.sizing.swap_mb > 0 {
            let f = dir.join(SWAP);
            self.scratch_disk(&f, (spec.sizing.swap_mb as u64) << 20, Scratch::Swap)
                .await?;
            layout.swap = Some(f);
        }
        if spec.config_drive {
            let iso = dir.join("disk.config");
            crate::configdrive::build(spec, &iso, &self.cfg.mkisofs).await?;
            layout.config_drive = Some(iso);
        }
        Ok(layout)
    }

    /// Creates a raw scratch disk of `bytes` (sparse), formatted as Nova's libvirt driver
    /// formats them (ext4 labelled `ephemeral0`, or swap) — unless it exists at that size
    /// or larger. An ephemeral disk that must grow is grown (its file system is not: the
    /// guest resizes it, as with Nova); swap is made again.
    async fn scratch_disk(&self, f: &Path, bytes: u64, kind: Scratch) -> Result<(), HvError> {
        let have = tokio::fs::metadata(f).await.map(|m| m.len()).ok();
        match (have, kind) {
            (Some(n), _) if n == bytes => return Ok(()),
            (Some(n), Scratch::Ephemeral) if n < bytes => {
                return set_len(f, bytes).await;
            }
            (Some(n), Scratch::Ephemeral) => {
                return Err(err(format!(
                    "the ephemeral disk {} ({n} bytes) cannot shrink to {bytes} bytes",
                    f.display()
                )));
            }
            _ => {}
        }
        let part = f.with_extension("part");
        let _ = tokio::fs::remove_file(&part).await;
        set_len(&part, bytes).await?;
        let p = part.to_string_lossy();
        let made = match kind {
            Scratch::Ephemeral => {
                self.run("mkfs.ext4", &["-q", "-F", "-L", "ephemeral0", &p])
                    .await
            }
            Scratch::Swap => self.run("mkswap", &[&p]).await,
        };
        if let Err(e) = made {
            // An unformatted disk still works (cloud-init formats ephemeral0 itself).
            tracing::warn!(disk = %f.display(), error = %e.message, "libvirt: formatting a scratch disk");
        }
        tokio::fs::rename(&part, f)
            .await
            .map_err(|e| retryable(format!("creating {}: {e}", f.display())))
    }

    /// (Re)defines the domain from the spec and the layout, and records its size.
    async fn define(&self, spec: &InstanceSpec, layout: &Layout) -> Result<(), HvError> {
        let xml = domain_xml(spec, layout, self.cfg.virt_type)?;
        let file = layout.dir.join("libvirt.xml");
        tokio::fs::write(&file, &xml)
            .await
            .map_err(|e| retryable(format!("writing {}: {e}", file.display())))?;
        self.virsh(&["define", &file.to_string_lossy()]).await?;
        write_sizing(&layout.dir, &spec.sizing).await
    }

    async fn define_and_start(&self, spec: &InstanceSpec) -> Result<(), HvError> {
        let layout = self.layout(spec).await?;
        self.define(spec, &layout).await?;
        self.virsh(&["start", &spec.uuid]).await?;
        Ok(())
    }

    /// [`Hypervisor::resize`]: a cold resize of the guest where it is, as Nova's libvirt
    /// driver makes one on the same host: the guest powered off; while the resize waits for
    /// confirmation its disks and size are kept in `resize-kept/` (Nova's `_resize`
    /// directory); the root disk grown, the ephemeral disk grown, swap made anew; the
    /// domain defined again with the new vCPUs and memory. A spec back at the kept size is
    /// a revert: the kept disks are put back; one without a previous size a confirmation:
    /// they are removed. Each file operation is a rename or repeatable, so
    /// a step cut short by a crash is finished by the next call.
    async fn resize_in_place(&self, spec: &InstanceSpec) -> Result<(), HvError> {
        let uuid = spec.uuid.as_str();
        let dir = self.dir(uuid);
        let kept = dir.join(KEPT);
        let current = read_sizing(&dir).await;
        let kept_sizing = read_sizing(&kept).await;
        if let Some(old) = &kept_sizing {
            if *old == spec.sizing && current.as_ref() != Some(&spec.sizing) {
                // Reverted: the guest as it was, with its disks as they were.
                self.hard_off(uuid).await?;
                for f in [ROOT, EPHEMERAL, SWAP] {
                    match tokio::fs::rename(kept.join(f), dir.join(f)).await {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(retryable(format!("reverting {f}: {e}"))),
                    }
                }
                let layout = self.layout(spec).await?;
                self.define(spec, &layout).await?;
                return remove_dir(&kept).await;
            }
            if spec.previous_sizing.is_none() {
                // Confirmed: nothing more to keep.
                remove_dir(&kept).await?;
            }
        }
        let Some(current) = current else {
            // A guest from before sizes were recorded is taken as it is given.
            return write_sizing(&dir, &spec.sizing).await;
        };
        if current == spec.sizing {
            return Ok(());
        }
        if spec.sizing.root_gb < current.root_gb && dir.join(ROOT).exists() {
            return Err(err(format!(
                "guest {uuid}: the root disk cannot shrink from {} to {} GiB",
                current.root_gb, spec.sizing.root_gb
            )));
        }
        self.power_off(uuid).await?;
        if spec.previous_sizing.is_some() && kept_sizing.is_none() {
            let part = dir.join(format!("{KEPT}.part"));
            remove_dir(&part).await?;
            tokio::fs::create_dir_all(&part)
                .await
                .map_err(|e| retryable(format!("creating {}: {e}", part.display())))?;
            for f in [ROOT, EPHEMERAL, SWAP] {
                let src = dir.join(f);
                if src.exists() {
                    let (a, b) = (src.to_string_lossy(), part.join(f));
                    self.run("cp", &["--sparse=always", &a, &b.to_string_lossy()])
                        .await?;
                }
            }
            write_sizing(&part, &current).await?;
            tokio::fs::rename(&part, &kept)
                .await
                .map_err(|e| retryable(format!("keeping the disks of {uuid}: {e}")))?;
        }
        let root = dir.join(ROOT);
        if spec.sizing.root_gb > current.root_gb && root.exists() {
            let size = format!("{}G", spec.sizing.root_gb);
            self.run(
                &self.cfg.qemu_img,
                &["resize", "-q", &root.to_string_lossy(), &size],
            )
            .await?;
        }
        if spec.sizing.ephemeral_gb == 0 {
            let _ = tokio::fs::remove_file(dir.join(EPHEMERAL)).await;
        }
        if spec.sizing.swap_mb != current.swap_mb {
            let _ = tokio::fs::remove_file(dir.join(SWAP)).await;
        }
        let layout = self.layout(spec).await?;
        self.define(spec, &layout).await
    }

    /// Powers the guest off: ACPI first, destroyed after the shutdown timeout.
    async fn power_off(&self, uuid: &str) -> Result<(), HvError> {
        if self.virsh(&["shutdown", uuid]).await.is_ok() {
            let deadline = tokio::time::Instant::now() + self.cfg.shutdown_timeout;
            while tokio::time::Instant::now() < deadline {
                if matches!(self.state(uuid).await?, Some(PowerState::Shutdown) | None) {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            tracing::warn!(%uuid, "libvirt: the guest did not power off in time, destroying it");
        }
        self.hard_off(uuid).await
    }

    /// Stops the guest at once (a missing or stopped one is no error).
    async fn hard_off(&self, uuid: &str) -> Result<(), HvError> {
        match self.virsh(&["destroy", uuid]).await {
            Ok(_) => Ok(()),
            Err(e)
                if e.message.contains("not running")
                    || e.message.contains("failed to get domain") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Adds the device `xml` to the guest's definition, and to the running guest when it
    /// runs (hot-plug), through a file `name` in its directory.
    async fn attach_xml(&self, uuid: &str, name: &str, xml: String) -> Result<(), HvError> {
        let file = self.dir(uuid).join(name);
        tokio::fs::write(&file, xml)
            .await
            .map_err(|e| retryable(format!("writing {}: {e}", file.display())))?;
        let live = matches!(
            self.state(uuid).await?,
            Some(PowerState::Running | PowerState::Paused)
        );
        let f = file.to_string_lossy();
        let mut args = vec!["attach-device", uuid, &f, "--config"];
        if live {
            args.push("--live");
        }
        let r = self.virsh(&args).await.map(drop);
        let _ = tokio::fs::remove_file(&file).await;
        r
    }

    /// The guest's disks with a `<serial>` (its volumes): volume id → target device.
    async fn volume_targets(&self, uuid: &str) -> Result<BTreeMap<String, String>, HvError> {
        let xml = self.virsh(&["dumpxml", uuid]).await?;
        Ok(disk_serials(&xml))
    }
}

/// Where a guest's pieces are.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub root: Option<PathBuf>,
    pub kernel: Option<PathBuf>,
    pub ramdisk: Option<PathBuf>,
    pub cmdline: Option<String>,
    pub config_drive: Option<PathBuf>,
    /// The flavor's ephemeral disk and swap, raw files.
    pub ephemeral: Option<PathBuf>,
    pub swap: Option<PathBuf>,
}

/// The files of a guest's directory.
const ROOT: &str = "disk";
const EPHEMERAL: &str = "disk.eph0";
const SWAP: &str = "disk.swap";
/// The size the guest was defined with (JSON [`strata_agent_api::Sizing`]).
const SIZING: &str = "sizing.json";
/// What a resize waiting for confirmation keeps to go back to.
const KEPT: &str = "resize-kept";

/// The kinds of scratch disk.
#[derive(Debug, Clone, Copy)]
enum Scratch {
    Ephemeral,
    Swap,
}

async fn set_len(f: &Path, bytes: u64) -> Result<(), HvError> {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(f)
        .await
        .map_err(|e| retryable(format!("creating {}: {e}", f.display())))?;
    file.set_len(bytes)
        .await
        .map_err(|e| retryable(format!("sizing {}: {e}", f.display())))
}

async fn read_sizing(dir: &Path) -> Option<Sizing> {
    let b = tokio::fs::read(dir.join(SIZING)).await.ok()?;
    serde_json::from_slice(&b).ok()
}

/// Written whole and renamed into place.
async fn write_sizing(dir: &Path, sizing: &Sizing) -> Result<(), HvError> {
    let (tmp, f) = (dir.join("sizing.json.part"), dir.join(SIZING));
    let b = serde_json::to_vec(sizing).map_err(|e| err(e.to_string()))?;
    tokio::fs::write(&tmp, b)
        .await
        .and(tokio::fs::rename(&tmp, &f).await)
        .map_err(|e| retryable(format!("writing {}: {e}", f.display())))
}

async fn remove_dir(d: &Path) -> Result<(), HvError> {
    match tokio::fs::remove_dir_all(d).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(retryable(format!("removing {}: {e}", d.display()))),
    }
}

/// Escapes text for XML content and attribute values.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn path(p: &Path) -> String {
    esc(&p.to_string_lossy())
}

/// The `<disk>` of a volume from its connection info (`file` or `rbd`, as Cinder's drivers
/// describe them).
pub fn volume_disk_xml(disk: &Disk) -> Result<String, HvError> {
    let info = &disk.connection_info;
    let data = &info["data"];
    let serial = disk.volume_id.as_deref().unwrap_or_default();
    let dev = esc(&disk.device_name);
    match info["driver_volume_type"].as_str().unwrap_or_default() {
        "file" => {
            let file = data["path"]
                .as_str()
                .ok_or_else(|| err(format!("volume {serial}: no path in its connection info")))?;
            let format = data["format"].as_str().unwrap_or("raw");
            Ok(format!(
                "<disk type='file' device='disk'><driver name='qemu' type='{}'/>\
                 <source file='{}'/><target dev='{dev}' bus='virtio'/><serial>{}</serial></disk>",
                esc(format),
                esc(file),
                esc(serial)
            ))
        }
        "rbd" => {
            let name = data["name"]
                .as_str()
                .ok_or_else(|| err(format!("volume {serial}: no RBD name")))?;
            let hosts: Vec<&str> = data["hosts"]
                .as_array()
                .map(|a| a.iter().filter_map(|h| h.as_str()).collect())
                .unwrap_or_default();
            let ports: Vec<String> = data["ports"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            p.as_str()
                                .map(String::from)
                                .unwrap_or_else(|| p.to_string())
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut hx = String::new();
            for (i, h) in hosts.iter().enumerate() {
                let port = ports.get(i).cloned().unwrap_or_else(|| "6789".into());
                hx.push_str(&format!("<host name='{}' port='{}'/>", esc(h), esc(&port)));
            }
            let auth = match (data["auth_username"].as_str(), data["secret_uuid"].as_str()) {
                (Some(u), Some(s)) if data["auth_enabled"].as_bool().unwrap_or(true) => format!(
                    "<auth username='{}'><secret type='ceph' uuid='{}'/></auth>",
                    esc(u),
                    esc(s)
                ),
                _ => String::new(),
            };
            Ok(format!(
                "<disk type='network' device='disk'><driver name='qemu' type='raw'/>\
                 <source protocol='rbd' name='{}'>{hx}</source>{auth}\
                 <target dev='{dev}' bus='virtio'/><serial>{}</serial></disk>",
                esc(name),
                esc(serial)
            ))
        }
        other => Err(err(format!(
            "volume {serial}: the libvirt driver cannot attach {other:?} volumes"
        ))),
    }
}

/// The `<interface>` of a port: a tap device the network data plane wires.
pub fn interface_xml(v: &Vif) -> String {
    format!(
        "<interface type='ethernet'><mac address='{}'/><target dev='{}'/>\
         <model type='virtio'/><mtu size='{}'/></interface>",
        esc(&v.mac_address.to_lowercase()),
        esc(&crate::configdrive::tap_name(&v.port_id)),
        v.mtu.max(576)
    )
}

/// The MAC addresses of a domain's `<interface>`s.
fn interface_macs(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<interface ") {
        let after = &rest[start..];
        let end = after
            .find("</interface>")
            .map(|e| e + 12)
            .unwrap_or(after.len());
        let nic = &after[..end];
        if let Some(m) = nic.find("<mac ").and_then(|i| {
            between(&nic[i..], "address='", "'").or_else(|| between(&nic[i..], "address=\"", "\""))
        }) {
            out.push(m.to_lowercase());
        }
        rest = &after[end..];
    }
    out
}

/// The domain of a guest.
pub fn domain_xml(spec: &InstanceSpec, l: &Layout, virt: VirtType) -> Result<String, HvError> {
    let mut os = String::from("<type arch='x86_64' machine='pc'>hvm</type>");
    if let Some(k) = &l.kernel {
        os.push_str(&format!("<kernel>{}</kernel>", path(k)));
        if let Some(r) = &l.ramdisk {
            os.push_str(&format!("<initrd>{}</initrd>", path(r)));
        }
        if let Some(c) = &l.cmdline {
            os.push_str(&format!("<cmdline>{}</cmdline>", esc(c)));
        }
    }
    os.push_str("<boot dev='hd'/><smbios mode='sysinfo'/>");
    let mut disks = String::new();
    if let Some(root) = &l.root {
        disks.push_str(&format!(
            "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>\
             <source file='{}'/><target dev='vda' bus='virtio'/></disk>",
            path(root)
        ));
    }
    // The flavor's ephemeral disk and swap take the next letters (as the compute API counts
    // them when it names volumes' devices).
    for (letter, f) in ('b'..).zip([&l.ephemeral, &l.swap].into_iter().flatten()) {
        disks.push_str(&format!(
            "<disk type='file' device='disk'><driver name='qemu' type='raw'/>\
             <source file='{}'/><target dev='vd{letter}' bus='virtio'/></disk>",
            path(f),
        ));
    }
    let mut volumes: Vec<&Disk> = spec.disks.iter().filter(|d| d.source == "volume").collect();
    volumes.sort_by_key(|d| (d.boot_index.unwrap_or(i64::MAX), d.device_name.clone()));
    for (i, d) in volumes.iter().enumerate() {
        let mut x = volume_disk_xml(d)?;
        // A volume the guest boots from (no local root) comes first.
        if l.root.is_none() && i == 0 {
            x = x.replacen("</disk>", "<boot order='1'/></disk>", 1);
        }
        disks.push_str(&x);
    }
    if let Some(cd) = &l.config_drive {
        disks.push_str(&format!(
            "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>\
             <source file='{}'/><target dev='hdd' bus='ide'/><readonly/></disk>",
            path(cd)
        ));
    }
    if l.root.is_none() && !volumes.is_empty() {
        os = os.replace("<boot dev='hd'/>", "");
    }
    let nics: String = spec.vifs.iter().map(interface_xml).collect();
    let log = path(&l.dir.join("console.log"));
    let cpu = match virt {
        VirtType::Kvm => "<cpu mode='host-model'/>",
        VirtType::Qemu => "",
    };
    let vcpus = spec.sizing.vcpus.max(1);
    let memory = spec.sizing.memory_mb.max(16);
    Ok(format!(
        "<domain type='{dt}'>\
<name>{name}</name><uuid>{uuid}</uuid>\
<metadata><strata:instance xmlns:strata='https://strata.dev/xmlns/libvirt/instance/1'>\
<strata:name>{display}</strata:name><strata:project>{project}</strata:project>\
</strata:instance></metadata>\
<memory unit='MiB'>{memory}</memory><vcpu>{vcpus}</vcpu>\
<sysinfo type='smbios'><system><entry name='manufacturer'>Strata</entry>\
<entry name='product'>OpenStack Compute</entry><entry name='serial'>{uuid}</entry>\
<entry name='uuid'>{uuid}</entry><entry name='family'>Virtual Machine</entry></system></sysinfo>\
<os>{os}</os><features><acpi/><apic/></features>{cpu}<clock offset='utc'/>\
<on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>\
<devices>{disks}{nics}\
<serial type='file'><source path='{log}' append='on'/><target port='0'/></serial>\
<console type='file'><source path='{log}' append='on'/><target type='serial' port='0'/></console>\
<memballoon model='virtio'/></devices></domain>",
        dt = virt.domain_type(),
        name = esc(&spec.name),
        uuid = esc(&spec.uuid),
        display = esc(spec.display_name.as_deref().unwrap_or(&spec.hostname)),
        project = esc(spec.project_id.as_deref().unwrap_or_default()),
    ))
}

/// `virsh list --all --managed-save`: domain name → state.
fn parse_states(table: &str) -> BTreeMap<String, PowerState> {
    let mut out = BTreeMap::new();
    for line in table.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 3 || cols[0] == "Id" || cols[0].starts_with('-') && cols[0].len() > 1 {
            continue;
        }
        let state = cols[2..].join(" ");
        let ps = match state.as_str() {
            "running" | "idle" | "blocked" | "in shutdown" => PowerState::Running,
            "paused" => PowerState::Paused,
            "shut off" => PowerState::Shutdown,
            "saved" | "pmsuspended" => PowerState::Suspended,
            "crashed" => PowerState::Crashed,
            _ => PowerState::NoState,
        };
        out.insert(cols[1].to_string(), ps);
    }
    out
}

/// `virsh list --all --uuid --name`: `(uuid, name)` pairs.
fn parse_ids(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// The `<disk>`s of a domain's XML that have a `<serial>`: serial → target device.
fn disk_serials(xml: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<disk ") {
        let after = &rest[start..];
        let end = after.find("</disk>").map(|e| e + 7).unwrap_or(after.len());
        let disk = &after[..end];
        let serial = between(disk, "<serial>", "</serial>");
        let dev = disk.find("<target ").and_then(|t| {
            between(&disk[t..], "dev='", "'").or_else(|| between(&disk[t..], "dev=\"", "\""))
        });
        if let (Some(s), Some(d)) = (serial, dev) {
            out.insert(s.to_string(), d.to_string());
        }
        rest = &after[end..];
    }
    out
}

fn between<'a>(s: &'a str, a: &str, b: &str) -> Option<&'a str> {
    let i = s.find(a)? + a.len();
    let j = s[i..].find(b)?;
    Some(&s[i..i + j])
}

async fn sha512_file(p: &Path) -> Result<String, HvError> {
    use sha2::Digest;
    let p = p.to_path_buf();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f =
            std::fs::File::open(&p).map_err(|e| retryable(format!("{}: {e}", p.display())))?;
        let mut h = sha2::Sha512::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f
                .read(&mut buf)
                .map_err(|e| retryable(format!("{}: {e}", p.display())))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    })
    .await
    .map_err(|e| retryable(e.to_string()))?
}

/// The host's memory (MiB), from `/proc/meminfo`.
fn host_memory_mb() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

/// The size (GiB) of the file system holding `p`.
async fn disk_gb(p: &Path) -> i64 {
    let out = tokio::process::Command::new("df")
        .args(["-k", "--output=size"])
        .arg(p)
        .output()
        .await;
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .and_then(|l| l.trim().parse::<i64>().ok())
        })
        .map(|kb| kb >> 20)
        .unwrap_or(0)
}

/// `Running hypervisor: QEMU 7.2.22` → 7002022, as Nova numbers versions.
fn hypervisor_version(version_output: &str) -> i64 {
    version_output
        .lines()
        .find(|l| l.contains("Running hypervisor"))
        .and_then(|l| l.split_whitespace().last())
        .map(|v| {
            v.split('.')
                .take(3)
                .map(|p| p.parse::<i64>().unwrap_or(0))
                .fold(0, |acc, p| acc * 1000 + p)
        })
        .unwrap_or(0)
}

impl Hypervisor for LibvirtDriver {
    fn name(&self) -> &str {
        "libvirt"
    }

    fn resync_interval(&self) -> Duration {
        // Guests change by themselves (power off from inside, console output): look often.
        Duration::from_secs(2)
    }

    fn resources(&self) -> HvFuture<'_, HostResources> {
        Box::pin(async move {
            tokio::fs::create_dir_all(&self.cfg.instances_path)
                .await
                .map_err(|e| {
                    err(format!(
                        "creating {}: {e}",
                        self.cfg.instances_path.display()
                    ))
                })?;
            let version = self.virsh(&["version"]).await?;
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            let field = |k: &str| {
                cpuinfo
                    .lines()
                    .find(|l| l.starts_with(k))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
                    .unwrap_or_default()
            };
            let vcpus = std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1);
            let dt = self.cfg.virt_type.domain_type();
            Ok(HostResources {
                hypervisor_type: "QEMU".into(),
                hypervisor_version: hypervisor_version(&version),
                vcpus,
                memory_mb: host_memory_mb(),
                local_gb: disk_gb(&self.cfg.instances_path).await,
                cpu_info: serde_json::json!({
                    "arch": "x86_64",
                    "model": field("model name"),
                    "vendor": field("vendor_id"),
                    "topology": {"sockets": 1, "cores": vcpus, "threads": 1},
                    "features": [],
                }),
                supported_instances: vec![("x86_64".into(), dt.into(), "hvm".into())],
                traits: vec![
                    "COMPUTE_VOLUME_ATTACH".into(),
                    "COMPUTE_NET_ATTACH_INTERFACE".into(),
                ],
            })
        })
    }

    fn list(&self) -> HvFuture<'_, Vec<(String, PowerState)>> {
        Box::pin(async move {
            Ok(self
                .listed()
                .await?
                .into_iter()
                .map(|l| (l.uuid, l.state))
                .collect())
        })
    }

    fn spawn<'a>(&'a self, spec: &'a InstanceSpec) -> HvFuture<'a, ()> {
        Box::pin(async move {
            let r = self.define_and_start(spec).await;
            if let Err(e) = &r {
                tracing::warn!(uuid = %spec.uuid, error = %e.message, "libvirt: spawn failed");
                let _ = self.destroy(&spec.uuid).await;
            }
            r
        })
    }

    fn resize<'a>(&'a self, uuid: &'a str, spec: &'a InstanceSpec) -> HvFuture<'a, ()> {
        Box::pin(async move {
            let r = self.resize_in_place(spec).await;
            if let Err(e) = &r {
                tracing::warn!(%uuid, error = %e.message, "libvirt: resize failed");
            }
            r
        })
    }

    fn destroy<'a>(&'a self, uuid: &'a str) -> HvFuture<'a, ()> {
        Box::pin(async move {
            self.hard_off(uuid).await?;
            match self.virsh(&["undefine", uuid, "--managed-save"]).await {
                Ok(_) => {}
                Err(e) if e.message.contains("failed to get domain") => {}
                Err(e) => return Err(e),
            }
            let dir = self.dir(uuid);
            match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(retryable(format!("removing {}: {e}", dir.display()))),
            }
        })
    }

    fn set_power<'a>(&'a self, uuid: &'a str, power: Power) -> HvFuture<'a, ()> {
        Box::pin(async move {
            let now = self
                .state(uuid)
                .await?
                .ok_or_else(|| err(format!("no guest {uuid} on this host")))?;
            use PowerState as S;
            match (power, now) {
                (Power::Running, S::Running)
                | (Power::Paused, S::Paused)
                | (Power::Shutdown, S::Shutdown)
                | (Power::Suspended, S::Suspended) => Ok(()),
                (Power::Running, S::Paused) => self.virsh(&["resume", uuid]).await.map(drop),
                // A stopped guest starts; a saved one is restored by the same call.
                (Power::Running, _) => self.virsh(&["start", uuid]).await.map(drop),
                (Power::Shutdown, S::Suspended) => {
                    self.virsh(&["managedsave-remove", uuid]).await.map(drop)
                }
                (Power::Shutdown, _) => self.power_off(uuid).await,
                (Power::Paused, S::Running) => self.virsh(&["suspend", uuid]).await.map(drop),
                (Power::Paused, _) => self.virsh(&["start", uuid, "--paused"]).await.map(drop),
                (Power::Suspended, S::Running | S::Paused) => {
                    self.virsh(&["managedsave", uuid]).await.map(drop)
                }
                (Power::Suspended, other) => Err(err(format!(
                    "guest {uuid} is {other:?}: only a running guest can be suspended"
                ))),
            }
        })
    }

    fn reboot<'a>(&'a self, uuid: &'a str, hard: bool) -> HvFuture<'a, ()> {
        Box::pin(async move {
            // As Nova: a soft reboot is a clean power off and on (falling back to a hard one
            // after the shutdown timeout), a hard reboot a destroy and start.
            if hard {
                self.hard_off(uuid).await?;
            } else {
                self.power_off(uuid).await?;
            }
            self.virsh(&["start", uuid]).await.map(drop)
        })
    }

    fn console_output<'a>(&'a self, uuid: &'a str) -> HvFuture<'a, String> {
        Box::pin(async move {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let p = self.dir(uuid).join("console.log");
            let mut f = match tokio::fs::File::open(&p).await {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
                Err(e) => return Err(err(format!("{}: {e}", p.display()))),
            };
            let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
            let keep = crate::CONSOLE_TAIL as u64;
            if len > keep {
                f.seek(std::io::SeekFrom::Start(len - keep))
                    .await
                    .map_err(|e| err(e.to_string()))?;
            }
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)
                .await
                .map_err(|e| err(format!("{}: {e}", p.display())))?;
            Ok(String::from_utf8_lossy(&buf).into_owned())
        })
    }

    fn attached_volumes<'a>(&'a self, uuid: &'a str) -> HvFuture<'a, Vec<String>> {
        Box::pin(async move { Ok(self.volume_targets(uuid).await?.into_keys().collect()) })
    }

    fn attach_volume<'a>(&'a self, uuid: &'a str, disk: &'a Disk) -> HvFuture<'a, ()> {
        Box::pin(async move {
            let name = format!(
                "volume-{}.xml",
                disk.volume_id.as_deref().unwrap_or(&disk.device_name)
            );
            self.attach_xml(uuid, &name, volume_disk_xml(disk)?).await
        })
    }

    fn detach_volume<'a>(&'a self, uuid: &'a str, volume_id: &'a str) -> HvFuture<'a, ()> {
        Box::pin(async move {
            let Some(dev) = self.volume_targets(uuid).await?.remove(volume_id) else {
                return Ok(());
            };
            let live = matches!(
                self.state(uuid).await?,
                Some(PowerState::Running | PowerState::Paused)
            );
            let mut args = vec!["detach-disk", uuid, &dev, "--config"];
            if live {
                args.push("--live");
            }
            self.virsh(&args).await?;
            // A live detach is a request to the guest (PCI unplug): wait until it is done.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while self.volume_targets(uuid).await?.contains_key(volume_id) {
                if tokio::time::Instant::now() >= deadline {
                    return Err(retryable(format!(
                        "the guest did not release volume {volume_id} ({dev}) in 30 s"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Ok(())
        })
    }

    fn interfaces<'a>(&'a self, uuid: &'a str) -> HvFuture<'a, Option<Vec<String>>> {
        Box::pin(async move {
            let xml = self.virsh(&["dumpxml", uuid]).await?;
            Ok(Some(interface_macs(&xml)))
        })
    }

    fn attach_interface<'a>(&'a self, uuid: &'a str, vif: &'a Vif) -> HvFuture<'a, ()> {
        Box::pin(async move {
            let name = format!("port-{}.xml", vif.port_id);
            self.attach_xml(uuid, &name, interface_xml(vif)).await
        })
    }

    fn detach_interface<'a>(&'a self, uuid: &'a str, mac: &'a str) -> HvFuture<'a, ()> {
        Box::pin(async move {
            let live = matches!(
                self.state(uuid).await?,
                Some(PowerState::Running | PowerState::Paused)
            );
            let mut args = vec![
                "detach-interface",
                uuid,
                "ethernet",
                "--mac",
                mac,
                "--config",
            ];
            if live {
                args.push("--live");
            }
            match self.virsh(&args).await {
                Ok(_) => {}
                Err(e) if e.message.contains("No interface found") => return Ok(()),
                Err(e) => return Err(e),
            }
            // A live detach is a request to the guest (PCI unplug): wait until it is done.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let xml = self.virsh(&["dumpxml", uuid]).await?;
                if !interface_macs(&xml)
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(mac))
                {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(retryable(format!(
                        "the guest did not release its NIC {mac} in 30 s"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    }

    fn snapshot<'a>(
        &'a self,
        uuid: &'a str,
        req: &'a SnapshotRequest,
        dest: &'a Path,
    ) -> HvFuture<'a, ()> {
        Box::pin(async move {
            let disk = self.dir(uuid).join("disk");
            if tokio::fs::metadata(&disk).await.is_err() {
                return Err(err(format!(
                    "guest {uuid} has no local root disk to snapshot (boot from volume: snapshot the volume)"
                )));
            }
            let format = match req.disk_format.as_str() {
                "qcow2" => "qcow2",
                "raw" | "ami" => "raw",
                other => {
                    return Err(err(format!(
                        "snapshots in disk format {other} are not supported (raw, qcow2)"
                    )))
                }
            };
            // -U: the running guest holds the image's lock; the copy is crash-consistent.
            self.run(
                &self.cfg.qemu_img,
                &[
                    "convert",
                    "-U",
                    "-q",
                    "-f",
                    "qcow2",
                    "-O",
                    format,
                    &disk.to_string_lossy(),
                    &dest.to_string_lossy(),
                ],
            )
            .await
            .map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> InstanceSpec {
        crate::configdrive::tests::spec()
    }

    fn layout() -> Layout {
        Layout {
            dir: PathBuf::from("/srv/i/u1"),
            root: Some(PathBuf::from("/srv/i/u1/disk")),
            kernel: Some(PathBuf::from("/srv/i/_base/k")),
            ramdisk: Some(PathBuf::from("/srv/i/_base/r")),
            cmdline: Some("root=/dev/vda console=ttyS0".into()),
            config_drive: Some(PathBuf::from("/srv/i/u1/disk.config")),
            ephemeral: None,
            swap: None,
        }
    }

    #[test]
    fn auto_takes_tcg_in_a_virtual_machine_or_without_kvm() {
        let vm = "processor\t: 0\nflags\t\t: fpu vme hypervisor lm\n";
        let metal = "processor\t: 0\nflags\t\t: fpu vme vmx lm\n";
        assert_eq!(VirtType::decide(true, vm), VirtType::Qemu);
        assert_eq!(VirtType::decide(false, metal), VirtType::Qemu);
        assert_eq!(VirtType::decide(true, metal), VirtType::Kvm);
        assert_eq!(VirtType::parse("kvm"), Ok(VirtType::Kvm));
        assert_eq!(VirtType::parse("qemu"), Ok(VirtType::Qemu));
        assert!(VirtType::parse("xen").is_err());
    }

    #[test]
    fn the_domain_names_the_server_and_its_pieces() {
        let mut s = spec();
        s.sizing.vcpus = 2;
        s.sizing.memory_mb = 256;
        s.display_name = Some("a <b> & 'c'".into());
        let x = domain_xml(&s, &layout(), VirtType::Qemu).unwrap();
        assert!(x.starts_with("<domain type='qemu'>"));
        assert!(x.contains("<name>instance-0000002a</name>"));
        assert!(x.contains("<uuid>6f1c1a47-1a43-4c1d-9d5e-2a0f3f1b7c11</uuid>"));
        assert!(x.contains("<memory unit='MiB'>256</memory><vcpu>2</vcpu>"));
        assert!(x.contains("<kernel>/srv/i/_base/k</kernel><initrd>/srv/i/_base/r</initrd>"));
        assert!(x.contains("<cmdline>root=/dev/vda console=ttyS0</cmdline>"));
        assert!(x.contains("<source file='/srv/i/u1/disk'/><target dev='vda' bus='virtio'/>"));
        assert!(x.contains(
            "<source file='/srv/i/u1/disk.config'/><target dev='hdd' bus='ide'/><readonly/>"
        ));
        assert!(x.contains("<mac address='fa:16:3e:00:00:01'/><target dev='tap0123456789a'/>"));
        assert!(x.contains("<source path='/srv/i/u1/console.log' append='on'/>"));
        assert!(x.contains("a &lt;b&gt; &amp; &apos;c&apos;"));
        assert!(!x.contains("host-model"));
        assert!(domain_xml(&s, &layout(), VirtType::Kvm)
            .unwrap()
            .contains("<domain type='kvm'>"));
    }

    #[test]
    fn volumes_are_virtio_disks_with_the_volume_id_as_serial() {
        let d = Disk {
            device_name: "vdb".into(),
            boot_index: None,
            connection_info: json!({"driver_volume_type": "file",
                "data": {"path": "/v/vol-1", "format": "qcow2"}}),
            size_gb: 1,
            source: "volume".into(),
            volume_id: Some("vol-1".into()),
        };
        let x = volume_disk_xml(&d).unwrap();
        assert!(x.contains("type='qcow2'"));
        assert!(x.contains(
            "<source file='/v/vol-1'/><target dev='vdb' bus='virtio'/><serial>vol-1</serial>"
        ));
        let rbd = Disk {
            connection_info: json!({"driver_volume_type": "rbd", "data": {
                "name": "volumes/volume-1", "hosts": ["10.0.0.1"], "ports": ["6789"],
                "auth_enabled": true, "auth_username": "cinder", "secret_uuid": "s-1"}}),
            ..d.clone()
        };
        let x = volume_disk_xml(&rbd).unwrap();
        assert!(x.contains("<source protocol='rbd' name='volumes/volume-1'><host name='10.0.0.1' port='6789'/></source>"));
        assert!(x.contains("<auth username='cinder'><secret type='ceph' uuid='s-1'/></auth>"));
        let iscsi = Disk {
            connection_info: json!({"driver_volume_type": "iscsi", "data": {}}),
            ..d
        };
        assert!(volume_disk_xml(&iscsi).is_err());
        // Booted from that volume: no local root, the volume boots first.
        let mut s = spec();
        s.disks = vec![Disk {
            boot_index: Some(0),
            device_name: "vda".into(),
            ..rbd
        }];
        let l = Layout {
            root: None,
            kernel: None,
            ..layout()
        };
        let x = domain_xml(&s, &l, VirtType::Qemu).unwrap();
        assert!(x.contains("<boot order='1'/></disk>"));
        assert!(!x.contains("<boot dev='hd'/>"));
    }

    #[test]
    fn the_flavors_ephemeral_disk_and_swap_follow_the_root() {
        let l = Layout {
            ephemeral: Some(PathBuf::from("/srv/i/u1/disk.eph0")),
            swap: Some(PathBuf::from("/srv/i/u1/disk.swap")),
            ..layout()
        };
        let x = domain_xml(&spec(), &l, VirtType::Qemu).unwrap();
        let (root, eph, swap) = (
            x.find("<target dev='vda'").unwrap(),
            x.find("<source file='/srv/i/u1/disk.eph0'/><target dev='vdb' bus='virtio'/>"),
            x.find("<source file='/srv/i/u1/disk.swap'/><target dev='vdc' bus='virtio'/>"),
        );
        assert!(root < eph.unwrap() && eph < swap, "{x}");
        // Swap alone takes vdb.
        let l = Layout {
            ephemeral: None,
            ..l
        };
        let x = domain_xml(&spec(), &l, VirtType::Qemu).unwrap();
        assert!(x.contains("<source file='/srv/i/u1/disk.swap'/><target dev='vdb' bus='virtio'/>"));
    }

    #[test]
    fn virsh_output_is_read() {
        let states = " Id   Name        State\n-----------------------\n 3    instance-1  running\n -    instance-2  shut off\n -    instance-3  saved\n 4    instance-4  paused\n";
        let m = parse_states(states);
        assert_eq!(m["instance-1"], PowerState::Running);
        assert_eq!(m["instance-2"], PowerState::Shutdown);
        assert_eq!(m["instance-3"], PowerState::Suspended);
        assert_eq!(m["instance-4"], PowerState::Paused);
        assert_eq!(m.len(), 4);
        let ids = parse_ids("u1 instance-1\n\nu2 instance-2\n");
        assert_eq!(
            ids,
            vec![
                ("u1".into(), "instance-1".into()),
                ("u2".into(), "instance-2".into())
            ]
        );
        let xml = "<domain><devices><disk type='file' device='disk'><target dev='vda' bus='virtio'/></disk>\
            <disk type='file' device='disk'><source file='/v/x'/><target dev='vdb' bus='virtio'/><serial>vol-1</serial></disk>\
            <disk type=\"network\"><target dev=\"vdc\"/><serial>vol-2</serial></disk></devices></domain>";
        let s = disk_serials(xml);
        assert_eq!(s.len(), 2);
        assert_eq!(s["vol-1"], "vdb");
        assert_eq!(s["vol-2"], "vdc");
        let nics = "<devices><interface type='ethernet'><mac address='FA:16:3E:00:00:01'/>\
            <target dev='tap1'/></interface><interface type='ethernet'>\
            <mac address='fa:16:3e:00:00:02'/></interface></devices>";
        assert_eq!(
            interface_macs(nics),
            vec!["fa:16:3e:00:00:01", "fa:16:3e:00:00:02"]
        );
        assert_eq!(
            hypervisor_version(
                "Compiled against library: libvirt 9.0.0\nRunning hypervisor: QEMU 7.2.22\n"
            ),
            7002022
        );
    }
}
