//! A small ext4 filesystem on a loop device, for simulating power loss.
//!
//! `power_cut` keeps exactly what the filesystem had handed to the block device when
//! the broker died: the image file is copied while the filesystem is still mounted,
//! so dirty page-cache data and uncommitted journal transactions (metadata such as a
//! file's size, a new directory entry, a rename) are lost, as they would be if the
//! machine lost power. What the device had received survives, as if the disk's own
//! cache were battery-backed: this simulates the filesystem half of a power cut, not
//! a lying disk. The copy is then mounted again, which replays the ext4 journal.
//!
//! Needs root, `losetup`, `mkfs.ext4` and `mount`; `LoopDisk::create` says why when
//! something is missing so the caller can skip.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct LoopDisk {
    dir: tempfile::TempDir,
    mount: PathBuf,
    device: Option<String>,
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

impl LoopDisk {
    /// Make a `size_mib` ext4 image and mount it at `mount` (created if missing).
    pub fn create(mount: &Path, size_mib: u64) -> Result<Self, String> {
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root (loop devices and mount need it)".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("weir-loop-disk-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .map_err(|e| e.to_string())?;
        let image = dir.path().join("disk.img");
        let file = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        file.set_len(size_mib << 20).map_err(|e| e.to_string())?;
        run("mkfs.ext4", &["-q", "-F", &image.to_string_lossy()])?;
        std::fs::create_dir_all(mount).map_err(|e| e.to_string())?;
        let mut disk = LoopDisk {
            dir,
            mount: mount.to_path_buf(),
            device: None,
        };
        disk.attach()?;
        Ok(disk)
    }

    fn image(&self) -> PathBuf {
        self.dir.path().join("disk.img")
    }

    fn attach(&mut self) -> Result<(), String> {
        let device = run("losetup", &["-f", "--show", &self.image().to_string_lossy()])?;
        let mounted = run("mount", &[&device, &self.mount.to_string_lossy()]);
        self.device = Some(device);
        mounted.map(|_| ())
    }

    /// Unmount (retrying: a SIGKILLed broker's io_uring can hold its files for a
    /// moment after the process is gone; lazily if still busy after that) and free
    /// the loop device (freed once unused if still busy).
    fn detach(&mut self) -> Result<(), String> {
        let Some(device) = self.device.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mount = self.mount.to_string_lossy().into_owned();
        let unmounted = loop {
            match run("umount", &[&mount]) {
                Ok(_) => break Ok(()),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => {
                    // Detach it from the tree anyway; the kernel frees it once unused.
                    eprintln!("loop disk: {e}; unmounting lazily");
                    break run("umount", &["-l", &mount]).map(|_| ());
                }
            }
        };
        let freed = run("losetup", &["-d", &device]);
        unmounted.and(freed.map(|_| ()))
    }

    /// Lose power: keep only what the block device had received, then mount that.
    /// Call with the broker already killed.
    pub fn power_cut(&mut self) {
        let image = self.image();
        let snapshot = self.dir.path().join("after-power-cut.img");
        run(
            "cp",
            &[
                "--sparse=always",
                &image.to_string_lossy(),
                &snapshot.to_string_lossy(),
            ],
        )
        .expect("copying the disk image");
        self.detach().expect("unmounting the old disk");
        std::fs::rename(&snapshot, &image).expect("replacing the disk image");
        self.attach().expect("mounting the disk after the power cut");
    }
}

impl Drop for LoopDisk {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            eprintln!("loop disk at {} not cleaned up: {e}", self.mount.display());
        }
    }
}
